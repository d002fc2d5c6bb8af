"""`make demo`: a fresh local WordPress with the bridge, migrated, and the sidecar running.

Lays Debian's WordPress into var/, installs it against a new database,
activates the FormRelay Bridge (which creates the schema from the shared
definition), runs `formrelay migrate` (which finds it up to date), then runs
`formrelay run` on the embedded SQLite queue until Ctrl-C (or --for SECONDS),
and tears everything down. `--keep` leaves the site and database in place.

Later issues grow this into the full demo (emulated WPForms submissions, the
partner simulator, a progress bar and a summary).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from devstack.wordpress import LocalWordPress, free_port

ROOT = Path(__file__).resolve().parents[1]


def formrelay_bin() -> str:
    local = ROOT / ".venv" / "bin" / "formrelay"
    return str(local) if local.exists() else shutil.which("formrelay") or "formrelay"


def sidecar_env(site: LocalWordPress, secret: str, listen: str) -> dict[str, str]:
    return {
        **os.environ,
        "WORDPRESS_DB_HOST": site.db_host_port, "WORDPRESS_DB_USER": site.db_user,
        "WORDPRESS_DB_PASSWORD": site.db_password, "WORDPRESS_DB_NAME": site.db_name,
        "WORDPRESS_TABLE_PREFIX": site.table_prefix,
        "FORMRELAY_SHARED_SECRET": secret, "FORMRELAY_LISTEN": listen,
        # No partner simulator yet (it comes with the delivery engine): a closed port.
        "FORMRELAY_PARTNER_URL": "http://127.0.0.1:9/api",
        "FORMRELAY_UPLOADS_DIR": str(site.uploads_dir),
        "FORMRELAY_DATA_DIR": str(site.dir / "sidecar-data"),
    }


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"demo: the sidecar exited with status {proc.returncode}")
        try:
            return dict(requests.get(url, timeout=1).json())
        except requests.RequestException:
            time.sleep(0.1)
    raise SystemExit(f"demo: the sidecar did not answer {url} within {timeout:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.splitlines()[0])
    parser.add_argument("--for", dest="seconds", type=float, default=None,
                        help="stop by itself after this many seconds (default: until Ctrl-C)")
    parser.add_argument("--name", default="demo", help="site name: var/wp-NAME (default: demo)")
    parser.add_argument("--keep", action="store_true",
                        help="leave the WordPress site and its database in place")
    args = parser.parse_args(argv)

    secret = secrets.token_urlsafe(24)
    listen = f"127.0.0.1:{free_port()}"
    site = LocalWordPress(
        args.name, plugins=[ROOT / "wp_bridge_plugin"], keep=args.keep,
        constants={"FORMRELAY_SIDECAR_URL": f"http://{listen}",
                   "FORMRELAY_SHARED_SECRET": secret})
    print("demo: laying out WordPress and installing it ...", flush=True)
    with site:
        env = sidecar_env(site, secret, listen)
        migrated = subprocess.run([formrelay_bin(), "migrate"], env=env, text=True,
                                  capture_output=True, check=False)
        print(f"demo: {migrated.stdout.strip() or migrated.stderr.strip()}", flush=True)
        if migrated.returncode:
            return migrated.returncode
        sidecar = subprocess.Popen([formrelay_bin(), "run"], env=env)
        try:
            health = wait_healthy(f"http://{listen}/healthz", sidecar)
            print(f"""
FormRelay demo is running
  WordPress      {site.url}/
  wp-admin       {site.url}/wp-admin/   login: {site.admin_user} / {site.admin_password}
  database       {site.db_name} on {site.db_host_port} (tables {site.table_prefix}formrelay_*)
  sidecar        http://{listen}/healthz -> {health.get('status')}, schema {health.get(
                'schema_version')}, queue: embedded SQLite
  stop           Ctrl-C{f' (or it stops by itself in {args.seconds:.0f} s)' if args.seconds
                        else ''}
""", flush=True)
            sidecar.wait(timeout=args.seconds)
        except subprocess.TimeoutExpired:
            pass
        except KeyboardInterrupt:
            print("\ndemo: stopping", flush=True)
        finally:
            if sidecar.poll() is None:
                sidecar.terminate()
                sidecar.wait(timeout=30)
        print("demo: sidecar stopped; " + ("site kept in " + str(site.dir) if args.keep
                                           else "removing the site and its database"))
    return 0 if sidecar.returncode in (0, -15) else sidecar.returncode


if __name__ == "__main__":
    sys.exit(main())
