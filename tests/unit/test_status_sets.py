"""Status sets have one source, sidecar/states.py: the schema, the plugin's queries and the
sidecar's SQL agree with it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sidecar.states import CLAIMABLE, JOB_STATUSES, WAITING, Status, sql_in

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "wp_bridge_plugin"
NAMES = "|".join(s.value for s in Status)


def quoted(text: str) -> set[str]:
    return set(re.findall(r"'([a-z]+)'", text))


def test_the_claim_index_holds_exactly_the_claimable_statuses():
    schema = (PLUGIN / "schema" / "0001_initial.sql").read_text()
    (listed,) = re.findall(r"due_priority .*?status IN \(([^)]*)\)", schema)
    assert quoted(listed) == set(CLAIMABLE)


def test_the_plugins_waiting_counts_use_the_waiting_statuses():
    unreachable = (PLUGIN / "admin" / "class-formrelay-unreachable.php").read_text()
    (query,) = re.findall(r"WHERE status IN \([^)]*\)\", ([^)]*)\)", unreachable)
    assert quoted(query) == set(WAITING)
    notice = (PLUGIN / "admin" / "class-formrelay-notice-state.php").read_text()
    (listed,) = re.findall(r"WAITING_STATUSES\s*=\s*array\(([^)]*)\)", notice)
    assert quoted(listed) == set(WAITING)
    cli = (PLUGIN / "includes" / "class-formrelay-cli-status.php").read_text()
    (listed,) = re.findall(r"const STATUSES = array\(([^)]*)\)", cli)
    assert quoted(listed) == set(JOB_STATUSES)


def test_no_sql_in_the_sidecar_spells_out_a_status_list():
    spelled = re.compile(rf"IN \(\s*'(?:{NAMES})'")
    found = [f"{path.relative_to(ROOT)}:{n}" for path in (ROOT / "sidecar").rglob("*.py")
             for n, line in enumerate(path.read_text().splitlines(), 1) if spelled.search(line)]
    assert found == []


def test_sql_in_quotes_each_status():
    assert sql_in(CLAIMABLE) == "('pending', 'retrying')"
