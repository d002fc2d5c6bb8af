"""Smoke test of bench/vs_action_scheduler.py: its quick mode runs end to end with N=5.

No figure is judged (speed targets live in the bench, not in tests): the run must
finish, both contenders must have delivered every job (the bench checks the
simulator holds N records and 2N documents, else exits 1), and the report must
carry a positive rate for each side at each latency and the command.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.vs_action_scheduler import DEFAULT_AS

pytestmark = [pytest.mark.slow, pytest.mark.wordpress, pytest.mark.db, pytest.mark.redis,
              pytest.mark.sim]

ROOT = Path(__file__).resolve().parents[2]
ROW = re.compile(r"^\s*(0|200) ms\s+5\s+([\d.]+)\s+[\d.]+\s+([\d.]+)\s+[\d.]+\s+[\d.]+x$", re.M)
CPU_ROW = re.compile(r"^\s*(\d+) ms\s+(AS|FR)(?:\s+[\d.]+){4}\s+([\d.]+)$", re.M)


def test_quick_mode_delivers_five_jobs_each_way() -> None:
    if not DEFAULT_AS.is_file():
        pytest.skip(f"no Action Scheduler tarball at {DEFAULT_AS}")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "vs_action_scheduler.py"), "--quick",
         "--jobs", "5", "--jobs-200", "5"],
        capture_output=True, text=True, timeout=400, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-2000:]
    rows = {latency: (float(theirs), float(ours))
            for latency, theirs, ours in ROW.findall(proc.stdout)}
    assert set(rows) == {"0", "200"}, proc.stdout
    assert all(theirs > 0 and ours > 0 for theirs, ours in rows.values()), proc.stdout
    cpu = {(latency, side): float(total) for latency, side, total in CPU_ROW.findall(proc.stdout)}
    assert set(cpu) == {(lat, side) for lat in ("0", "200") for side in ("AS", "FR")}, proc.stdout
    assert all(total > 0 for total in cpu.values()), proc.stdout  # each side's CPU was seen
    assert "command: .venv/bin/python bench/vs_action_scheduler.py --quick" in proc.stdout
