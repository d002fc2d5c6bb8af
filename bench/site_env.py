"""What the WordPress benches share: the test MariaDB's settings and the machine's load."""

from __future__ import annotations

import os
import subprocess
from typing import Any

_host, _, _port = os.environ.get("FORMRELAY_TEST_DB_HOST", "127.0.0.1:3306").rpartition(":")


def db_settings() -> dict[str, Any]:
    """LocalWordPress keyword arguments for FORMRELAY_TEST_DB_HOST / _USER / _PASSWORD."""
    return {"db_host": _host or "127.0.0.1", "db_port": int(_port or 3306),
            "db_user": os.environ.get("FORMRELAY_TEST_DB_USER", "root"),
            "db_password": os.environ.get("FORMRELAY_TEST_DB_PASSWORD", "")}


def uptime() -> str:
    """The load averages (1, 5, 15 min): the machine is shared, figures need them."""
    out = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout
    return out.strip().partition("load average: ")[2] or out.strip()
