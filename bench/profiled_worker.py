"""`formrelay worker` under cProfile, every thread included (py-spy is not installed here).

    python bench/profiled_worker.py DIR

Runs `formrelay worker` with the environment's settings; each thread gets a
profiler of its own, and on exit their merged stats go to DIR/worker-<pid>.prof
with the top of them (by cumulative and by own time) in DIR/worker-<pid>.txt.
The benches start it in place of `formrelay worker` when FORMRELAY_BENCH_PROFILE
names a directory. A forked process worker would not be profiled, so this runs
thread workers (FORMRELAY_WORKER_TYPE=thread) whatever the environment says.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import sys
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

_profiles: list[cProfile.Profile] = []
_thread_run = threading.Thread.run


def _profiled_run(self: threading.Thread) -> None:
    prof = cProfile.Profile()
    _profiles.append(prof)
    prof.enable()
    try:
        _thread_run(self)
    finally:
        prof.disable()


def _dump(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"worker-{os.getpid()}"
    stats = pstats.Stats(_profiles[0])
    for prof in _profiles[1:]:
        stats.add(prof)
    stats.dump_stats(f"{stem}.prof")
    text = io.StringIO()
    shown: Any = pstats.Stats(f"{stem}.prof", stream=text)
    shown.sort_stats("cumulative").print_stats(40)
    shown.sort_stats("tottime").print_stats(40)
    Path(f"{stem}.txt").write_text(text.getvalue(), encoding="utf-8")


def main() -> int:
    out = Path(sys.argv[1])
    os.environ["FORMRELAY_WORKER_TYPE"] = "thread"  # the deliveries in this process
    threading.Thread.run = _profiled_run  # type: ignore[method-assign]
    main_prof = cProfile.Profile()
    _profiles.append(main_prof)
    from sidecar.cli import main as formrelay

    main_prof.enable()
    try:
        return formrelay(["worker"])
    finally:
        main_prof.disable()
        _dump(out)


if __name__ == "__main__":
    sys.exit(main())
