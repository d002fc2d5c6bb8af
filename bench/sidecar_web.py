"""`formrelay web` on a local WordPress site's database, for the benchmarks."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from devstack.wordpress import LocalWordPress

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def sidecar_web(site: LocalWordPress, secret: str, listen: str, data: str) -> Iterator[None]:
    """Run `formrelay web` until the block ends; it answers /healthz when this yields."""
    env = {**os.environ, "WORDPRESS_DB_HOST": site.db_host_port,
           "WORDPRESS_DB_USER": site.db_user, "WORDPRESS_DB_PASSWORD": site.db_password,
           "WORDPRESS_DB_NAME": site.db_name, "WORDPRESS_TABLE_PREFIX": site.table_prefix,
           "FORMRELAY_SHARED_SECRET": secret, "FORMRELAY_LISTEN": listen,
           "FORMRELAY_DATA_DIR": data}
    web = subprocess.Popen([str(ROOT / ".venv" / "bin" / "formrelay"), "web"], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                # Up once it answers: 503 too, as it says "no live worker" (no worker runs here).
                if requests.get(f"http://{listen}/healthz", timeout=1).status_code in (200, 503):
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or web.poll() is not None:
                raise SystemExit("bench: `formrelay web` did not start")
            time.sleep(0.1)  # polling a starting server
        yield
    finally:
        web.terminate()
        web.wait(timeout=30)
