"""`make demo`'s program: fresh WordPress + bridge + migrate + sidecar, then a clean teardown."""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from sidecar.store import Database, DbSettings
from tests.conftest import TEST_DB_HOST, TEST_DB_PASSWORD, TEST_DB_USER

pytestmark = [pytest.mark.wordpress, pytest.mark.db, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_the_sidecar_against_a_fresh_wordpress_and_cleans_up():
    name = f"demotest{secrets.token_hex(3)}"
    proc = subprocess.run([sys.executable, "-m", "devstack.demo", "--for", "2", "--name", name],
                          cwd=ROOT, capture_output=True, text=True, timeout=180)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "is up to date (version 1)" in out  # the plugin's activation made the schema
    assert "FormRelay demo is running" in out
    assert re.search(r"healthz -> ok, schema 1, queue: embedded SQLite", out)
    db_name = re.search(r"database\s+(fr_wp_\w+) on", out).group(1)
    server = Database(DbSettings.parse(TEST_DB_HOST, TEST_DB_USER, TEST_DB_PASSWORD, ""))
    with server.connect(database=False) as conn:
        cur = conn.cursor()
        cur.execute("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = %s",
                    (db_name,))
        assert cur.fetchone()[0] == 0, "the demo's database should be dropped"
    assert not (ROOT / "var" / f"wp-{name}").exists()
