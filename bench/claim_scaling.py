"""Claim latency with a small and a large jobs table: the claim must not scan history.

Builds two scratch databases on the MariaDB server (FORMRELAY_TEST_DB_HOST /
_USER / _PASSWORD, default 127.0.0.1:3306 root), each with the same 500 due
jobs and the rest completed (1,000 rows in all, then 1,000,000), times
`Store.claim(owner, 10, 300)` repeatedly (putting the claimed jobs back to
pending between rounds, untimed), prints the medians and their ratio, and
drops the databases. Target: ratio <= 1.3.

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


def time_claims(store: Store, rounds: int) -> list[float]:
    samples = []
    jobs = f"{PREFIX}formrelay_jobs"
    for _ in range(rounds):
        started = time.perf_counter()
        claimed = store.claim("bench", 10, 300)
        samples.append((time.perf_counter() - started) * 1000)
        assert len(claimed) == 10
        with store.db.transaction() as cur:  # untimed: put them back in the queue
            cur.execute(f"UPDATE {jobs} SET status = 'pending', attempts = 0, lease_owner = NULL,"
                        " lease_expires_at = NULL, next_attempt_at = created_at"
                        f" WHERE id IN ({', '.join(str(j.id) for j in claimed)})")
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    args = parser.parse_args()
    medians: dict[int, float] = {}
    for total in (args.small, args.large):
        started = time.perf_counter()
        name, store = build(total)
        built = time.perf_counter() - started
        try:
            time_claims(store, 20)  # warm the buffer pool and the connection
            samples = time_claims(store, args.rounds)
        finally:
            store.db.close()
            conn = Database(server("")).connect(database=False)
            conn.cursor().execute(f"DROP DATABASE {name}")
            conn.close()
        medians[total] = statistics.median(samples)
        p95 = statistics.quantiles(samples, n=20)[-1]
        print(f"{total:>9,} jobs ({DUE} due, rest completed; built in {built:.0f} s):"
              f" claim of 10 median {medians[total]:.2f} ms, p95 {p95:.2f} ms"
              f" over {args.rounds} claims")
    ratio = medians[args.large] / medians[args.small]
    verdict = "meets" if ratio <= 1.3 else "MISSES"
    print(f"ratio large/small: {ratio:.2f} ({verdict} the target <= 1.3)")
    print(f"command: .venv/bin/python bench/claim_scaling.py --rounds {args.rounds}"
          f" --small {args.small} --large {args.large}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
