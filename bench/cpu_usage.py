"""CPU seconds used by named groups of processes over a stretch of time, from /proc.

Where the time goes in a load run: a group is a process group (Apache's
prefork children all sit in their parent's) or a set of pids (a sidecar
process, the database). utime + stime of each live member, plus what its
reaped children used; a member that exits during the stretch loses its share,
so start and end the stretch with the processes running.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()  # fields from 3 (state) on


def _seconds(fields: list[str]) -> float:
    # utime, stime, cutime, cstime are fields 14-17 (index 11-14 here).
    return sum(int(v) for v in fields[11:15]) / TICK


def group_seconds(pgid: int) -> float:
    """CPU seconds of every live process in process group `pgid`."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) and int(fields[2]) == pgid:
            total += _seconds(fields)
    return total


def pid_seconds(*pids: int) -> float:
    return sum(_seconds(f) for p in pids if (f := _stat(p)))


def tree_seconds(pid: int) -> float:
    """CPU seconds of `pid` and its live descendants (process workers, file-check sandboxes)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))):
            parents[int(entry.name)] = int(fields[1])
    tree, grew = {pid}, True
    while grew:
        more = {child for child, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    return pid_seconds(*tree)


def pids_of(name: str) -> list[int]:
    """The pids of a program by its exact name (`pidof`), e.g. the database server."""
    out = subprocess.run(["pidof", name], capture_output=True, text=True, check=False).stdout
    return [int(p) for p in out.split()]


Probe = Callable[[], float]


def snapshot(probes: Mapping[str, Probe]) -> dict[str, float]:
    return {name: probe() for name, probe in probes.items()}


def used(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    return {name: after[name] - before[name] for name in before}
