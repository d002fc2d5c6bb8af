"""CPU of `formrelay web` per notify, sent as the plugin sends it under mod_php.

Builds a scratch `fr_bench_*` database (FORMRELAY_TEST_DB_*), starts `formrelay web`
on it with a Redis queue of its own, and sends signed `/v1/notify` requests on raw
sockets that are written and closed without reading the answer (the bridge's
FormRelay_Notify). Prints the web process tree's CPU per notify, from /proc.

    .venv/bin/python bench/notify_cpu.py [--notifies 1000]
"""

from __future__ import annotations

import argparse
import json
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cpu_usage import tree_seconds
from bench.formrelay_side import _flush_queue
from bench.throughput import FORMRELAY, REDIS_URL, base_env, scratch_database, wait_for
from devstack.wordpress import free_port
from sidecar.signing import sign
from sidecar.store import NewJob, Store

SECRET = "bench-notify-secret-0123456789"


def request(body: bytes) -> bytes:
    ts, nonce = int(time.time()), secrets.token_hex(16)
    head = (f"POST /v1/notify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nX-FormRelay-Timestamp: {ts}\r\n"
            f"X-FormRelay-Nonce: {nonce}\r\nX-FormRelay-Signature: {sign(SECRET, ts, nonce, body)}"
            "\r\nConnection: close\r\n\r\n")
    return head.encode() + body


def measure(store: Store, notifies: int, data: str) -> float:
    job, _ = store.enqueue(NewJob("bench:1", 1, 1, "{}"))
    body = json.dumps({"job_id": job.id}).encode()
    port = free_port()
    cfg = store.db.settings
    name = cfg.database
    env = {**base_env(), "WORDPRESS_DB_HOST": f"{cfg.host}:{cfg.port}",
           "WORDPRESS_DB_USER": cfg.user, "WORDPRESS_DB_PASSWORD": cfg.password,
           "WORDPRESS_DB_NAME": name, "WORDPRESS_TABLE_PREFIX": store.prefix,
           "FORMRELAY_SHARED_SECRET": SECRET, "FORMRELAY_LISTEN": f"127.0.0.1:{port}",
           "FORMRELAY_REDIS_URL": REDIS_URL,
           "FORMRELAY_QUEUE_NAME": f"formrelay-bench-{secrets.token_hex(4)}",
           "FORMRELAY_DATA_DIR": data}
    web = subprocess.Popen([FORMRELAY, "web"], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        def up() -> bool:
            try:
                return requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1).ok
            except requests.RequestException:
                return False

        wait_for(up, 30, "`formrelay web` to answer /readyz")

        def send() -> None:
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(request(body))

        for _ in range(100):  # warm: imports, connections, caches
            send()
        before = tree_seconds(web.pid)
        for _ in range(notifies):
            send()
        # The last notifies are still being served: let CPU use settle (a deadline).
        wait_for(lambda: _settled(web.pid), 30, "the web process to go idle")
        return (tree_seconds(web.pid) - before) / notifies
    finally:
        web.terminate()
        web.wait()
        _flush_queue(env)  # the rings each notify queued


def _settled(pid: int) -> bool:
    first = tree_seconds(pid)
    time.sleep(0.3)  # a sampling interval, not synchronisation
    return tree_seconds(pid) - first < 0.005


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notifies", type=int, default=1000)
    args = parser.parse_args()
    with scratch_database() as store, tempfile.TemporaryDirectory(prefix="fr-notify-cpu-") as data:
        per = measure(store, args.notifies, data)
    print(f"`formrelay web` CPU per raw-socket notify: {per * 1000:.2f} ms ({args.notifies})")
    print(f"command: .venv/bin/python bench/notify_cpu.py --notifies {args.notifies}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
