"""What the benches share: the test MariaDB's settings, a WordPress with the bridge, the
machine's load, main()'s end."""

from __future__ import annotations

import os
import secrets
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from devstack import wpforms
from devstack.wordpress import LocalWordPress, PHPValue, free_port

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")

_host, _, _port = os.environ.get("FORMRELAY_TEST_DB_HOST", "127.0.0.1:3306").rpartition(":")


def db_settings() -> dict[str, Any]:
    """LocalWordPress keyword arguments for FORMRELAY_TEST_DB_HOST / _USER / _PASSWORD."""
    return {"db_host": _host or "127.0.0.1", "db_port": int(_port or 3306),
            "db_user": os.environ.get("FORMRELAY_TEST_DB_USER", "root"),
            "db_password": os.environ.get("FORMRELAY_TEST_DB_PASSWORD", "")}


class BridgeSite(NamedTuple):
    site: LocalWordPress  # not started: `with site:` brings it up and removes it
    secret: str  # FORMRELAY_SHARED_SECRET, for the sidecar the bench starts
    listen: str  # FORMRELAY_LISTEN: host:port the bridge notifies


def bridge_site(name: str, constants: Mapping[str, PHPValue] | None = None,
                **site_args: Any) -> BridgeSite:
    """A WordPress with the bridge and the WPForms emulator, named `name` + 6 hex digits,
    whose bridge points at a sidecar not started yet (a fresh secret, a free port).

    `constants` adds wp-config.php constants; `site_args` go to LocalWordPress (e.g.
    `**db_settings()`; without it the site is on LocalWordPress' default MariaDB).
    """
    secret, listen = secrets.token_urlsafe(24), f"127.0.0.1:{free_port()}"
    site = LocalWordPress(f"{name}{secrets.token_hex(3)}",
                          plugins=[ROOT / "wp_bridge_plugin", wpforms.plugin()],
                          constants={"FORMRELAY_SIDECAR_URL": f"http://{listen}",
                                     "FORMRELAY_SHARED_SECRET": secret, **(constants or {})},
                          **site_args)
    return BridgeSite(site, secret, listen)


def uptime() -> str:
    """The load averages (1, 5, 15 min): the machine is shared, figures need them."""
    out = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout
    return out.strip().partition("load average: ")[2] or out.strip()


def core_speed() -> str:
    """CPU seconds of a fixed pure-Python loop: on a shared host the same code runs at
    different speeds from hour to hour (seen here: 0.2 to 0.8 s), and a side-by-side
    ratio with it; figures from different runs compare only at a like speed."""
    started, total = time.process_time(), 0
    for i in range(5_000_000):
        total += i
    return f"{time.process_time() - started:.2f} s per 5M-step loop"


def run_bench(script: str, measure: Callable[[], T], report: Callable[[T], None], *,
              removed: str, errors: tuple[type[Exception], ...],
              machine_load: bool = True, timed: bool = True) -> int:
    """A bench's exit code: `measure()`, then `report()` what it gave and how to repeat it.

    A failure in `errors` (exit 1) or Ctrl-C (exit 130) prints one line naming the bench,
    not a traceback: the context managers inside `measure` have already removed `removed`.
    """
    name = Path(script).stem
    started = time.perf_counter()
    load = f"{uptime()} ({core_speed()})" if machine_load else ""
    try:
        result = measure()
    except errors as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{name}: interrupted ({removed} removed)", file=sys.stderr)
        return 130
    report(result)
    if machine_load:
        print(f"machine load before: {load}; after: {uptime()} ({core_speed()})")
    if timed:
        print(f"took {time.perf_counter() - started:.0f} s")
    print("command: " + shlex.join([".venv/bin/python", f"bench/{name}.py", *sys.argv[1:]]))
    return 0
