"""What remembering each notify's nonce in MySQL costs on the notify path.

Builds a scratch `fr_bench_*` database (FORMRELAY_TEST_DB_HOST / _USER / _PASSWORD),
serves the sidecar's Flask app with waitress on 127.0.0.1, and sends signed
notifies of one pending job over HTTP, alternating blocks with the nonce
recorded (the real path) and with the record step replaced by a no-op, so the
machine's drift cancels out. Prints median and p95 of the round trip for both,
the difference, and the nonce INSERT alone (`Store.first_use`), then drops the
database. Run: .venv/bin/python bench/notify_nonce.py [--blocks 20] [--per-block 25]
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import sys
import threading
import time
from pathlib import Path

import requests
from waitress.server import create_server

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.claim_scaling import PREFIX, server
from sidecar.doorbell import Recorded
from sidecar.signing import NOTIFY, sign
from sidecar.store import Database, NewJob, Store
from sidecar.store.schema import migrate
from sidecar.web import create_app

SECRET = "bench-notify-secret-0123456789"


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[18]


def figures(name: str, values: list[float]) -> str:
    return (f"{name:<34} median {statistics.median(values) * 1000:7.3f} ms"
            f"   p95 {p95(values) * 1000:7.3f} ms   (n={len(values)})")


def notify(session: requests.Session, url: str, body: bytes) -> float:
    ts, nonce = int(time.time()), secrets.token_hex(16)
    headers = {"Content-Type": "application/json", "X-FormRelay-Timestamp": str(ts),
               "X-FormRelay-Nonce": nonce, "X-FormRelay-Signature": sign(SECRET, ts, nonce, body)}
    start = time.perf_counter()
    resp = session.post(url + "/v1/notify", data=body, headers=headers, timeout=10)
    took = time.perf_counter() - start
    if resp.status_code != 202:
        raise SystemExit(f"bench: notify answered {resp.status_code}")
    return took


def run(store: Store, blocks: int, per_block: int) -> None:
    job, _ = store.enqueue(NewJob("bench:1", 1, 1, "{}"))
    body = json.dumps({"job_id": job.id}).encode()
    recording = store.first_use
    skip = {"on": False}

    def first_use(purpose: str, nonce: str, ttl: int = 660) -> bool:
        return True if skip["on"] else recording(purpose, nonce, ttl)

    store.first_use = first_use  # type: ignore[method-assign]
    app = create_app(store, SECRET, Recorded())
    srv = create_server(app, host="127.0.0.1", port=0, threads=4)
    url = f"http://127.0.0.1:{srv.effective_port}"
    threading.Thread(target=srv.run, daemon=True).start()
    session = requests.Session()
    for _ in range(50):  # warm up connections and caches
        notify(session, url, body)
    with_nonce: list[float] = []
    without: list[float] = []
    for block in range(blocks * 2):
        skip["on"] = block % 2 == 1
        (without if skip["on"] else with_nonce).extend(
            notify(session, url, body) for _ in range(per_block))
    srv.close()
    inserts = []
    for _ in range(blocks * per_block):
        start = time.perf_counter()
        recording(NOTIFY, secrets.token_hex(16))
        inserts.append(time.perf_counter() - start)
    print(figures("notify round trip, nonce recorded", with_nonce))
    print(figures("notify round trip, no nonce record", without))
    added = statistics.median(with_nonce) - statistics.median(without)
    print(f"{'added (median)':<34} {added * 1000:7.3f} ms")
    print(figures("nonce INSERT alone (first_use)", inserts))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=20)
    parser.add_argument("--per-block", type=int, default=25)
    args = parser.parse_args()
    name = f"fr_bench_{secrets.token_hex(4)}"
    conn = Database(server("")).connect(database=False)
    conn.cursor().execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    try:
        db = Database(server(name))
        migrate(db, PREFIX)
        run(Store(db, PREFIX), args.blocks, args.per_block)
        db.close()
    finally:
        conn.cursor().execute(f"DROP DATABASE {name}")
        conn.close()
    print(f"command: .venv/bin/python bench/notify_nonce.py --blocks {args.blocks}"
          f" --per-block {args.per_block}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
