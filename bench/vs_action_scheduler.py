"""FormRelay vs WordPress' Action Scheduler, side by side on one WordPress and one partner.

One WordPress (Debian's 6.1 on `php -S`, a scratch MariaDB database) holds
both: Action Scheduler unpacked from the tarball given (default: the shared
copy of 3.7.0) and FormRelay (the bridge, the WPForms emulator, `formrelay web`
and `formrelay worker` with Redis). For each partner latency (0 ms, 200 ms) one
`formrelay partner-sim` process serves both, reset in between:

- Action Scheduler: N actions, each one JSON record POST and two multipart
  document POSTs through wp_remote_post, run by AS's CLI queue runner;
- FormRelay: N real WPForms submissions with two PDFs each, captured by the
  bridge while no sidecar runs, then one `formrelay worker` with its defaults (4
  process workers) and
  the partner ceilings off (FORMRELAY_PARTNER_RPS=0, FORMRELAY_PARTNER_CONCURRENCY=0),
  which rings the backlog once at start (a notify queued in Redis as well would
  ring each job twice: a cost of the backlog set-up, not of steady delivery).

Each rate is N / (last - first partner request), from the simulator's own
record (bench/sim_window.py); beside them, the CPU ms per job of each side's
runner, MariaDB, Redis and the simulator while that side delivered. Target:
FormRelay >= Action Scheduler at 0 ms (aim 2x). FORMRELAY_BENCH_PROFILE=DIR runs
the worker under cProfile.

    .venv/bin/python bench/vs_action_scheduler.py [--quick] [--jobs N] [--jobs-200 N]
        [--only 0ms|200ms] [--worker-type thread|process] [--action-scheduler PATH.tar.gz]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import action_scheduler as action_sched
from bench.cpu_usage import Probe, pid_seconds, pids_of, snapshot, used
from bench.formrelay_side import FormRelaySide, make_form
from bench.sim_window import Window, WindowError, ratio, window
from bench.site_env import bridge_site, db_settings, run_bench
from bench.throughput import BenchError, partner_sim_process
from devstack.samples import write_pdf
from devstack.wordpress import LocalWordPress
from sidecar.partner_sim.server import SimControl

DEFAULT_AS = Path("/work/shared/anchors/action-scheduler-3.7.0.tar.gz")


@dataclass(frozen=True)
class Row:
    latency_ms: int
    jobs: int
    action_scheduler: Window
    formrelay: Window
    as_cpu: dict[str, float]  # CPU seconds by process while each side delivered
    fr_cpu: dict[str, float]

    @property
    def as_rate(self) -> float:
        return self.action_scheduler.rate(self.jobs)

    @property
    def fr_rate(self) -> float:
        return self.formrelay.rate(self.jobs)


def checked(sim: SimControl, jobs: int, who: str) -> Window:
    got = window(sim.records())
    if (got.records, got.documents) != (jobs, 2 * jobs):
        raise BenchError(f"{who}: the partner holds {got.records} records and {got.documents}"
                         f" documents, not {jobs} and {2 * jobs}")
    return got


def children_seconds() -> float:
    """CPU seconds of this bench's reaped children (the PHP runner, once it returns)."""
    got = resource.getrusage(resource.RUSAGE_CHILDREN)
    return got.ru_utime + got.ru_stime


def one_latency(site: LocalWordPress, fr: FormRelaySide, files: list[Path], latency_ms: int,
                jobs: int, logs: Path, numbered: int) -> Row:
    timeout = 120 + jobs * 3 * (latency_ms / 1000 + 0.05)
    with partner_sim_process(latency_ms, logs) as (root, sim_pid):
        sim = SimControl(root)
        shared: dict[str, Probe] = {
            "MariaDB": partial(pid_seconds, *pids_of("mariadbd")),
            "Redis": partial(pid_seconds, *pids_of("redis-server")),
            "simulator": partial(pid_seconds, sim_pid)}
        action_sched.enqueue(site, f"{root}/api", files, jobs, numbered)
        before = snapshot({"worker": children_seconds, **shared})
        ran, failed = action_sched.drain(site, timeout)
        as_cpu = used(before, snapshot({"worker": children_seconds, **shared}))
        if (ran, failed) != (jobs, 0):
            raise BenchError(f"Action Scheduler ran {ran} actions ({failed} failed) of {jobs}")
        theirs = checked(sim, jobs, "Action Scheduler")
        sim.reset()
        since = fr.max_job_id()
        fr.submit(jobs, files)
        if sim.records():
            raise BenchError("the partner got requests before FormRelay's worker started")
        fr_cpu = fr.deliver(root, since, jobs, timeout, shared)
        try:
            ours = checked(sim, jobs, "FormRelay")
        except BenchError as exc:
            raise BenchError(f"{exc}; its documents: {fr.document_outcomes(since)}") from exc
    return Row(latency_ms, jobs, theirs, ours, as_cpu, fr_cpu)


def run(args: argparse.Namespace, logs: Path, tmp: Path) -> tuple[str, list[Row]]:
    # No WP-Cron: AS runs only when the bench drives it.
    site, secret, listen = bridge_site("vsas", {"DISABLE_WP_CRON": True}, **db_settings())
    files = [write_pdf(tmp / "docs" / f"referral-{i}.pdf", 3000) for i in range(2)]
    rows: list[Row] = []
    with site:
        version = action_sched.install(site, action_sched.unpack(args.action_scheduler,
                                                                  tmp / "as"))
        fr = FormRelaySide(site, make_form(site), secret, listen, logs, tmp / "data")
        if args.worker_type:  # else the sidecar's default
            fr.ceilings["FORMRELAY_WORKER_TYPE"] = args.worker_type
        plan = [(0, args.jobs), (200, args.jobs_200)]
        for latency, jobs in plan:
            if args.only in (None, f"{latency}ms"):
                rows.append(one_latency(site, fr, files, latency, jobs, logs,
                                        len(rows) * 1_000_000))
    return version, rows


def report(version: str, rows: list[Row]) -> None:
    print(f"Action Scheduler {version} (CLI queue runner) vs FormRelay (`formrelay worker`,"
          " defaults, Redis, partner ceilings off); rates from the simulator's record")
    print("latency   jobs   AS jobs/s  (span s)   FR jobs/s  (span s)   FR / AS")
    for r in rows:
        x = ratio(r.fr_rate, r.as_rate)
        print(f"{r.latency_ms:>4} ms {r.jobs:>6} {r.as_rate:>11.1f}"
              f" {r.action_scheduler.seconds:>9.2f} {r.fr_rate:>11.1f}"
              f" {r.formrelay.seconds:>9.2f} {x:>9.2f}x")
    print("where the time goes: CPU ms per job while each side delivered (runner: AS's PHP"
          " CLI, FormRelay's worker process tree from its start; MariaDB and Redis are"
          " machine-wide)")
    names = ("worker", "MariaDB", "Redis", "simulator")
    print("latency  side  " + "".join(f"{n:>11}" for n in (*names, "total")))
    for r in rows:
        for side, cpu in (("AS", r.as_cpu), ("FR", r.fr_cpu)):
            ms = [1000 * cpu[n] / r.jobs for n in names]
            print(f"{r.latency_ms:>4} ms  {side:>4}  " + "".join(f"{v:>11.2f}" for v in ms)
                  + f"{sum(ms):>11.2f}")
    zero = next((r for r in rows if r.latency_ms == 0), None)
    if zero is not None:
        x = ratio(zero.fr_rate, zero.as_rate)
        print(f"target: FormRelay >= Action Scheduler at 0 ms (aim 2x): {x:.2f}x"
              f" ({'met' if x >= 1 else 'MISSED'})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--action-scheduler", type=Path, default=DEFAULT_AS, metavar="TARBALL",
                        help=f"an Action Scheduler release tarball (default {DEFAULT_AS})")
    parser.add_argument("--quick", action="store_true", help="small N, for a fast check")
    parser.add_argument("--jobs", type=int, help="jobs at 0 ms (default 1000: a span of"
                        " several seconds, so a worker's start weighs little; quick 40)")
    parser.add_argument("--jobs-200", type=int, help="jobs at 200 ms (default 40, quick 8)")
    parser.add_argument("--only", choices=("0ms", "200ms"))
    parser.add_argument("--worker-type", choices=("thread", "process"),
                        help="FORMRELAY_WORKER_TYPE of the worker (default: the sidecar's)")
    args = parser.parse_args()
    args.jobs = args.jobs or (40 if args.quick else 1000)
    args.jobs_200 = args.jobs_200 or (8 if args.quick else 40)
    if not args.action_scheduler.is_file():
        print(f"vs_action_scheduler: no tarball at {args.action_scheduler}", file=sys.stderr)
        return 2

    def measure() -> tuple[str, list[Row]]:
        with tempfile.TemporaryDirectory(prefix="fr-vs-as-") as tmp:
            logs = Path(tmp) / "logs"
            logs.mkdir()
            return run(args, logs, Path(tmp))

    return run_bench(__file__, measure, lambda got: report(*got), removed="site and queue",
                     errors=(BenchError, WindowError))


if __name__ == "__main__":
    sys.exit(main())
