"""Chaos: 500 submissions delivered through everything that goes wrong, in one run.

Real MariaDB, Huey on a private Redis, 3 `formrelay worker` processes and the partner
simulator over HTTP. While the submissions are delivered:

- the partner answers 30% of requests 503 and lets 10% time out (half of those after
  it created the record or document), throughout;
- one worker is SIGKILLed every 10 s and a new one started, until the outage is over;
- Redis is FLUSHALLed once (T+20 s): every queued and scheduled doorbell is gone;
- every MariaDB connection to the database is KILLed once (T+35 s);
- the partner is fully down once (T+50 s) for 120 s x FORMRELAY_CHAOS_SCALE.

At the end the partner holds exactly one record per submission (by idempotency key)
and each valid document exactly once; nothing is left pending/processing/retrying;
the only failed jobs are those with an HTML page named .pdf (rejected), and no step
ran out of attempts. The figures are printed (`pytest -s`) and written to a file.

    FORMRELAY_CHAOS_SCALE=1 pytest -m chaos -s      # the literal 2-minute outage
    FORMRELAY_CHAOS_SEED=1234 ...                    # the same submissions and kill order
"""

from __future__ import annotations

import math
import random
import time
from pathlib import Path
from typing import Any

import pytest

from sidecar import config
from sidecar.partner_sim import RunningSim
from sidecar.queue import build_huey
from sidecar.store import Database, DbSettings, Store
from sidecar.tasks import register
from tests.chaos.checks import account
from tests.chaos.conftest import Pools
from tests.chaos.faults import Fault, FaultSchedule, Monitor
from tests.chaos.figures import db_figures, describe_logs, expected_gave_up, format_figures
from tests.chaos.plan import Plan, worker_env
from tests.chaos.processes import PrivateRedis, WorkerPool, formrelay_bin
from tests.chaos.submissions import enqueue_all, make_submissions
from tests.conftest import PREFIX, wait_until

pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.db, pytest.mark.redis,
              pytest.mark.sim]

PROGRESS_EVERY = 15.0


def _timeout() -> int:
    """10 minutes (the suite's budget at the default scale), more if a larger scale asks."""
    try:
        return max(600, int(Plan.from_env().drain_deadline) + 180)
    except ValueError:  # reported by the `plan` fixture, as the test's failure
        return 600


def _no_engine() -> Any:
    raise RuntimeError("the test only rings; the workers deliver")


@pytest.mark.timeout(_timeout())
def test_every_submission_arrives_exactly_once_through_chaos(
        plan: Plan, chaos_db: DbSettings, private_redis: PrivateRedis, chaos_sim: RunningSim,
        uploads: Path, chaos_logs: Path, worker_pools: Pools, tmp_path: Path) -> None:
    began = time.monotonic()
    rng = random.Random(plan.seed)
    subs = make_submissions(uploads, plan, rng)
    env = worker_env(plan, chaos_db.database, chaos_sim.url, private_redis.url, uploads,
                     tmp_path / "data")
    print(f"\nchaos: scale {plan.scale:g}, seed {plan.seed}, {len(subs)} submissions,"
          f" outage {plan.outage_seconds:g} s at T+{plan.outage_at:g}s; logs in {chaos_logs}")

    # the workers, up and beating before the first submission
    monitor = Monitor(chaos_db)
    pool = worker_pools.add(WorkerPool([formrelay_bin(), "worker"], env, chaos_logs))
    for _ in range(plan.workers):
        pool.start()

    def workers_up() -> bool:
        exits = pool.unexpected_exits()
        assert not exits, "a worker did not start:\n" + "\n".join(exits)
        return pool.pids() <= monitor.live_workers()

    wait_until(workers_up, 120, f"{plan.workers} workers' first heartbeats", interval=0.5)

    # the faults, on a clock that starts with the first submission
    kill_rng = random.Random(plan.seed + 1)
    seen: dict[str, Any] = {"open_at_outage": 0, "keys_flushed": 0, "entries_flushed": 0,
                            "connections_killed": 0}

    def flush() -> str:
        seen["keys_flushed"], seen["entries_flushed"] = private_redis.flushall()
        return f"FLUSHALL ({seen['keys_flushed']} keys, {seen['entries_flushed']} tasks)"

    def kill_connections() -> str:
        seen["connections_killed"] = monitor.kill_connections()
        return f"KILLed {seen['connections_killed']} connections"

    def outage() -> str:
        jobs, docs = monitor.unfinished()
        seen["open_at_outage"] = jobs
        chaos_sim.configure(outage_seconds=plan.outage_seconds)
        return f"partner down for {plan.outage_seconds:g} s; open: {jobs} jobs, {docs} documents"

    kill_times = [plan.kill_every * n for n in range(1, math.ceil(plan.outage_ends
                                                                  / plan.kill_every))]
    schedule = FaultSchedule(
        [Fault(t, "kill worker", lambda: pool.kill_one(kill_rng)) for t in kill_times]
        + [Fault(plan.flush_at, "redis flushall", flush),
           Fault(plan.kill_db_at, "kill db connections", kill_connections),
           Fault(plan.outage_at, "partner outage", outage)])

    # the bridge's side: one job row per submission, and its doorbell
    store = Store(Database(chaos_db), PREFIX)
    tasks = register(build_huey(config.load("migrate", env)), _no_engine)
    t0 = time.monotonic()
    schedule.start(t0)
    enqueue_all(store, subs, uploads, tasks.ring_record)
    store.db.close()  # nothing of the test's stays connected for the KILL
    print(f"chaos: T+{time.monotonic() - t0:.1f}s all {len(subs)} submissions stored and rung")

    last_note = [t0]

    def drained() -> bool:
        exits = pool.unexpected_exits()
        assert not exits, "a worker exited on its own:\n" + "\n".join(exits)
        jobs, docs = monitor.unfinished()
        now = time.monotonic()
        if now - last_note[0] >= PROGRESS_EVERY:
            last_note[0] = now
            print(f"chaos: T+{now - t0:.0f}s open: {jobs} jobs, {docs} documents;"
                  f" kills {pool.kills}; faults done {len(schedule.done)}/"
                  f"{len(schedule.faults)}", flush=True)
        return schedule.finished and jobs == 0 and docs == 0

    drain_error = ""
    drain_seconds = math.nan
    try:
        wait_until(drained, max(1.0, t0 + plan.drain_deadline - time.monotonic()),
                   f"every job to end by T+{plan.drain_deadline:g}s", interval=1.0)
        drain_seconds = time.monotonic() - t0
    except AssertionError as exc:
        drain_error = str(exc)
    finally:
        schedule.stop()
        pool.stop_all()

    # the accounting: the partner's side against the database's
    stats = chaos_sim.stats()
    acc = account(monitor, subs, stats, chaos_sim.records())
    figures = {
        "scale": plan.scale, "seed": plan.seed, "submissions": len(subs),
        "html_submissions": sum(1 for s in subs if s.html_positions),
        "documents": sum(len(s.files) for s in subs), "sim": stats,
        "kills": pool.kills, "workers_started": pool.started,
        "flushes": schedule.count("redis flushall"),
        "outage_seconds": plan.outage_seconds, "outage_at": plan.outage_at,
        "drain_seconds": drain_seconds, "after_outage": drain_seconds - plan.outage_ends,
        **seen, **acc.figures, **db_figures(monitor),
    }
    figures.update(record_steps=len(subs), document_steps=figures["valid_documents"],
                   failure_rate=plan.failure_rate)
    figures["expected_gave_up"] = expected_gave_up(figures)
    text = format_figures(figures)
    events = "\n".join(f"  T+{at:6.1f}s  {name}: {detail}" for at, name, detail in schedule.done)
    problems = [p for p in (
        drain_error and f"did not drain: {drain_error}",
        *(f"fault failed: {e}" for e in schedule.errors),
        seen["open_at_outage"] == 0 and schedule.count("partner outage")
        and "the outage found every job ended: it tested nothing (raise the partner latency)",
        schedule.count("kill db connections") and seen["connections_killed"] == 0
        and "the KILL found no connection of the sidecar to kill",
    ) if p]
    if acc.problems:
        problems.append("end state:\n" + acc.report())
    log_events = ", ".join(f"{k} {v}" for k, v in sorted(figures["log_events"].items()))
    report = (f"{text}\n\nfaults:\n{events}\n\nlog rows by event: {log_events}\n"
              f"\nlogs:\n{describe_logs(chaos_logs)}\n"
              f"\ntest wall time: {time.monotonic() - began:.1f} s\n"
              + ("\nPROBLEMS:\n" + "\n".join(problems) if problems else "\nall checks passed"))
    figures_file = tmp_path / "chaos-figures.txt"
    figures_file.write_text(report + "\n")
    print(f"\n{report}\nfigures written to {figures_file}")
    assert not problems, "\n".join(problems) + f"\n(figures and log paths in {figures_file})"
