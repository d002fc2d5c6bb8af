"""`make demo`'s program, run as a user runs it: WordPress submissions through to the partner."""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from sidecar.store import Database, DbSettings
from tests.conftest import TEST_DB_HOST, TEST_DB_PASSWORD, TEST_DB_USER

pytestmark = [pytest.mark.wordpress, pytest.mark.db, pytest.mark.sim, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_delivers_every_valid_submission_and_cleans_up():
    name = f"demotest{secrets.token_hex(3)}"
    proc = subprocess.run([sys.executable, "-m", "devstack.demo", "--name", name,
                           "--timeout", "240"], cwd=ROOT, capture_output=True, text=True,
                          timeout=400)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "25 submissions sent through WordPress" in out
    assert re.search(r"submissions delivered\s+24 of 25", out), out
    assert re.search(r"documents rejected\s+1\n", out), out
    assert "rejected: type text/html is not a document" in out
    assert re.search(r"partner records created\s+25\n", out), out
    assert re.search(r"dashboard\s+http://127\.0\.0\.1:\d+/wp-admin/admin\.php\?page=formrelay"
                     r"\s+login: admin / \S+", out)
    assert re.search(r"outage pauses\s+\d+\n", out), out
    assert "Demo Person" not in out and "@example.org" not in out  # no submitted values
    db_name = re.search(r"\(database (fr_wp_\w+)\)", out).group(1)
    assert_cleaned_up(db_name, name)


def assert_cleaned_up(db_name: str, name: str) -> None:
    """The demo's database is dropped and its site folder removed."""
    server = Database(DbSettings.parse(TEST_DB_HOST, TEST_DB_USER, TEST_DB_PASSWORD, ""))
    conn = server.connect(database=False)
    cur = conn.cursor()
    cur.execute("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = %s",
                (db_name,))
    assert cur.fetchone()[0] == 0, "the demo's database should be dropped"
    conn.close()
    assert not (ROOT / "var" / f"wp-{name}").exists()
