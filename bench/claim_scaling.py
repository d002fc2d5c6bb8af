"""The engine's claim path with a small and a large jobs table: it must not scan history.

Builds two scratch databases on the MariaDB server (FORMRELAY_TEST_DB_HOST /
_USER / _PASSWORD, default 127.0.0.1:3306 root), each with the same 500 due
jobs and the rest completed (1,000 rows in all, then 1,000,000), and times the
two halves of the path the engine and the sweep run: `due_work(10)` (what the
sweep rings: the claim index) and `claim_job_for_delivery(id)` of each job it
lists (what a doorbell's task does: the claim by id, with the snapshot and the
pause row), putting the claimed jobs back to pending between rounds, untimed,
the two sizes in turn. Prints both medians per size and both ratios, and drops
the databases.
Target: each ratio <= 1.3.

    .venv/bin/python bench/claim_scaling.py [--rounds 300] [--large 1000000]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sidecar.store import Database, DbSettings, Store
from sidecar.store.schema import migrate

PREFIX = "wp_"
DUE = 500


def server(name: str) -> DbSettings:
    return DbSettings.parse(os.environ.get("FORMRELAY_TEST_DB_HOST", "127.0.0.1:3306"),
                            os.environ.get("FORMRELAY_TEST_DB_USER", "root"),
                            os.environ.get("FORMRELAY_TEST_DB_PASSWORD", ""), name)


def build(total: int) -> tuple[str, Store]:
    name = f"fr_bench_{secrets.token_hex(4)}"
    conn = Database(server("")).connect(database=False)
    conn.cursor().execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    conn.close()
    db = Database(server(name))
    migrate(db, PREFIX)
    jobs = f"{PREFIX}formrelay_jobs"
    with db.transaction() as cur:
        # Completed history first (older ids), then the due queue, as on a real site.
        for start in range(1, total - DUE + 1, 100_000):
            end = min(start + 100_000 - 1, total - DUE)
            cur.execute(
                f"INSERT INTO {jobs} (reference, form_id, entry_id, status, phase, priority,"
                " attempts, partner_record_id, created_at, completed_at, updated_at)"
                " SELECT CONCAT('wpforms:1:', seq), 1 + seq % 5, seq, 'completed', 'done', 10,"
                " 1, CONCAT('P-', seq), UTC_TIMESTAMP(3) - INTERVAL seq SECOND,"
                " UTC_TIMESTAMP(3), UTC_TIMESTAMP(3)"
                f" FROM seq_{start}_to_{end}")
        cur.execute(
            f"INSERT INTO {jobs} (reference, form_id, entry_id, status, priority, next_attempt_at,"
            " created_at, updated_at) SELECT CONCAT('due:', seq), 1, seq, 'pending', seq % 3 * 5,"
            f" UTC_TIMESTAMP(3), UTC_TIMESTAMP(3), UTC_TIMESTAMP(3) FROM seq_1_to_{DUE}")
        cur.execute(f"ANALYZE TABLE {jobs}")
        cur.fetchall()
    return name, Store(db, PREFIX)


def time_claims(store: Store, rounds: int) -> tuple[list[float], list[float]]:
    """(due_work samples, per-job claim samples), in ms."""
    due_samples: list[float] = []
    claim_samples: list[float] = []
    jobs = f"{PREFIX}formrelay_jobs"
    for _ in range(rounds):
        started = time.perf_counter()
        due, _ = store.due_work(10)
        due_samples.append((time.perf_counter() - started) * 1000)
        assert len(due) == 10
        for job_id, _ in due:
            started = time.perf_counter()
            claimed = store.claim_job_for_delivery(job_id, "bench", 300, watch="breaker")
            claim_samples.append((time.perf_counter() - started) * 1000)
            assert claimed is not None
        with store.db.transaction() as cur:  # untimed: put them back in the queue
            cur.execute(f"UPDATE {jobs} SET status = 'pending', attempts = 0, lease_owner = NULL,"
                        " lease_expires_at = NULL, next_attempt_at = created_at"
                        f" WHERE id IN ({', '.join(str(j) for j, _ in due)})")
    return due_samples, claim_samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    args = parser.parse_args()
    medians: dict[tuple[str, int], float] = {}
    built: dict[int, tuple[str, Store, float]] = {}
    samples: dict[tuple[str, int], list[float]] = {}
    try:
        for total in (args.small, args.large):
            started = time.perf_counter()
            name, store = build(total)
            built[total] = (name, store, time.perf_counter() - started)
            time_claims(store, 20)  # warm the buffer pool and the connection
        # Round by round, small and large in turn: a shared machine's load changes over
        # a run, and so bears on both sizes alike.
        for _ in range(args.rounds):
            for total, (_, store, _) in built.items():
                due, claims = time_claims(store, 1)
                samples.setdefault(("due_work", total), []).extend(due)
                samples.setdefault(("claim", total), []).extend(claims)
    finally:
        for name, store, _ in built.values():
            store.db.close()
            conn = Database(server("")).connect(database=False)
            conn.cursor().execute(f"DROP DATABASE {name}")
            conn.close()
    for (what, total), taken in samples.items():
        medians[what, total] = statistics.median(taken)
        p95 = statistics.quantiles(taken, n=20)[-1]
        print(f"{total:>9,} jobs ({DUE} due, rest completed; built in {built[total][2]:.0f} s):"
              f" {what} median {medians[what, total]:.3f} ms, p95 {p95:.3f} ms"
              f" over {len(taken)} calls")
    for what in ("due_work", "claim"):
        ratio = medians[what, args.large] / medians[what, args.small]
        verdict = "meets" if ratio <= 1.3 else "MISSES"
        print(f"{what} ratio large/small: {ratio:.2f} ({verdict} the target <= 1.3)")
    print(f"command: .venv/bin/python bench/claim_scaling.py --rounds {args.rounds}"
          f" --small {args.small} --large {args.large}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
