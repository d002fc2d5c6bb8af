"""The least-privilege GRANTs: names quoted or refused, the table list from the schema files,
`migrate --print-grants` as the command prints it, and the doctor's judgement of SHOW GRANTS."""

from __future__ import annotations

import re

import pytest

from sidecar import cli
from sidecar.doctor_grants import judge
from sidecar.store.grants import (
    AccountError,
    account,
    formrelay_tables,
    grant_statements,
    identifier,
    needs,
)
from sidecar.store.schema import SCHEMA_DIR

pytestmark = pytest.mark.unit
TO = "TO `fr`@`%`"


def test_the_formrelay_tables_are_every_table_the_schema_files_create():
    created = set()
    for path in SCHEMA_DIR.glob("*.sql"):
        created |= set(re.findall(r"CREATE TABLE IF NOT EXISTS \{prefix\}(\w+)", path.read_text()))
    assert formrelay_tables("wp_") == sorted(f"wp_{t}" for t in created)
    assert {"wp_formrelay_jobs", "wp_formrelay_alerts", "wp_formrelay_nonces"} <= set(
        formrelay_tables("wp_"))


def test_what_the_sidecar_reads_and_nothing_more():
    reads = [n.table for n in needs("x_") if n.privileges == ("SELECT",)]
    assert reads == ["x_options", "x_posts", "x_postmeta", "x_wpforms_entries",
                     "x_wpforms_entry_meta"]  # not entry_fields: `fields` has every value
    assert [n.table for n in needs("x_") if n.wpforms] == reads[-2:]
    own = [n for n in needs("x_") if n.table.startswith("x_formrelay_")]
    assert own and all(n.privileges == ("SELECT", "INSERT", "UPDATE", "DELETE") for n in own)


def test_identifiers_are_backtick_quoted_with_backticks_doubled():
    assert identifier("wordpress") == "`wordpress`"
    assert identifier("we`ird db") == "`we``ird db`"
    for bad in ("", "x" * 65, "nul\0", "trailing "):
        with pytest.raises(AccountError):
            identifier(bad)


@pytest.mark.parametrize("host", ["%", "localhost", "10.0.%", "192.168.1.0/255.255.255.0",
                                  "::1", "db-1.example.com", "app_host"])
def test_usable_hosts(host):
    assert account("formrelay", host) == f"'formrelay'@'{host}'"


@pytest.mark.parametrize(("user", "host"), [
    ("", "%"), ("x'@'%' IDENTIFIED BY 'p", "%"), ("a b", "%"), ("back\\slash", "%"),
    ("x" * 33, "%"), ("-leading", "%"), ("`tick`", "%"), ("ok", ""), ("ok", "a'b"),
    ("ok", "h; DROP USER root"), ("ok", "h\\"), ("ok", "x" * 256), ("ok", "1.2.3.4/a")])
def test_unusable_accounts_are_refused_not_quoted(user, host):
    with pytest.raises(AccountError):
        account(user, host)


def test_grant_statements_one_per_table_quoted():
    lines = grant_statements("my`db", "wp_", "formrelay", "10.0.0.%")
    assert len(lines) == len(needs("wp_"))
    assert lines[0] == ("GRANT SELECT, INSERT, UPDATE, DELETE ON `my``db`.`wp_formrelay_alerts`"
                        " TO 'formrelay'@'10.0.0.%'")
    assert lines[-1] == "GRANT SELECT ON `my``db`.`wp_wpforms_entry_meta` TO 'formrelay'@'10.0.0.%'"


def _env(monkeypatch, **more: str) -> None:
    for name in ("FORMRELAY_CONFIG", "WORDPRESS_DB_PASSWORD_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORDPRESS_DB_USER", "root")
    monkeypatch.setenv("WORDPRESS_DB_HOST", "127.0.0.1:9")  # nothing may connect
    for name, value in {"WORDPRESS_DB_NAME": "site", "WORDPRESS_TABLE_PREFIX": "wp_",
                        **more}.items():
        monkeypatch.setenv(name, value)


def test_print_grants_prints_comments_then_statements(monkeypatch, capsys):
    _env(monkeypatch, WORDPRESS_TABLE_PREFIX="site7_")
    assert cli.main(["migrate", "--print-grants", "formrelay", "--host", "10.0.%"]) == 0
    out = capsys.readouterr().out.splitlines()
    comments = [line for line in out if line.startswith("-- ")]
    assert len(comments) == 2 and "admin account" in comments[0]
    statements = [line.rstrip(";") for line in out if not line.startswith("-- ")]
    assert statements == grant_statements("site", "site7_", "formrelay", "10.0.%")
    assert all(line.endswith(";") for line in out if not line.startswith("-- "))


@pytest.mark.parametrize("argv", [
    ["migrate", "--print-grants", "x'; DROP USER root; --"],
    ["migrate", "--print-grants", "ok", "--host", "%' OR '1"],
    ["migrate", "--create-user", "no way", "--password-file", "/nonexistent"]])
def test_a_bad_name_exits_78_with_one_line_and_no_sql(monkeypatch, capsys, argv):
    _env(monkeypatch)
    assert cli.main(argv) == cli.EX_CONFIG
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert "not a usable" in captured.err and "GRANT" not in captured.err


def test_a_bad_database_name_exits_78(monkeypatch, capsys):
    _env(monkeypatch, WORDPRESS_DB_NAME="x" * 70)
    assert cli.main(["migrate", "--print-grants", "formrelay"]) == cli.EX_CONFIG
    assert "not a usable database" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["migrate", "--create-user", "fr"],
                                  ["migrate", "--password-file", "/p"],
                                  ["migrate", "--host", "%"]])
def test_flags_that_do_not_fit_together_exit_2(monkeypatch, capsys, argv):
    _env(monkeypatch)
    assert cli.main(argv) == 2
    assert capsys.readouterr().err.startswith("formrelay migrate: --")


def exact(database: str = "d", prefix: str = "wp_") -> list[str]:
    return [f"GRANT USAGE ON *.* {TO} IDENTIFIED BY PASSWORD '*ABC'"] + [
        s.replace("'fr'@'%'", "`fr`@`%`") for s in grant_statements(database, prefix, "fr", "%")]


def test_exactly_the_printed_grants_is_exact():
    v = judge(exact(), "d", "wp_")
    assert (v.missing, v.missing_wpforms, v.extras, v.roles) == ({}, [], [], False)


def test_root_everywhere_is_far_more_than_needed():
    v = judge([f"GRANT ALL PRIVILEGES ON *.* {TO} WITH GRANT OPTION",
               f"GRANT PROXY ON ''@'%' {TO} WITH GRANT OPTION"], "site", "wp_")
    assert v.extras == ["ALL PRIVILEGES ON *.*", "GRANT OPTION ON *.*", "PROXY"]
    assert not v.missing and not v.missing_wpforms


def test_the_wordpress_users_database_grant_is_an_extra_not_a_lack():
    v = judge([f"GRANT ALL PRIVILEGES ON `site\\_db`.* {TO}"], "site_db", "wp_")
    assert not v.missing and v.extras == ["ALL PRIVILEGES ON `site\\_db`.*"]
    assert judge([f"GRANT ALL PRIVILEGES ON `site\\_db`.* {TO}"], "siteXdb", "wp_").missing


def test_extras_on_tables_are_named():
    lines = [*exact(), f"GRANT INSERT, UPDATE ON `d`.`wp_users` {TO}",
             f"GRANT CREATE, DROP ON `d`.`wp_formrelay_jobs` {TO}",
             f"GRANT SELECT ON `d`.`wp_wpforms_entry_fields` {TO}",
             f"GRANT SELECT ON `other`.`t` {TO}", f"GRANT `some_role` {TO}"]
    v = judge(lines, "d", "wp_")
    assert sorted(v.extras) == ["CREATE, DROP on wp_formrelay_jobs",
                                "INSERT, UPDATE on wp_users", "SELECT on `other`.`t`",
                                "SELECT on wp_wpforms_entry_fields"]
    assert v.roles and not v.missing


def test_each_missing_privilege_is_named_and_wpforms_tables_apart():
    lines = [line for line in exact() if "wp_formrelay_log" not in line
             and "wp_posts" not in line and "wp_wpforms_entries" not in line]
    lines.append(f"GRANT SELECT, UPDATE ON `d`.`wp_formrelay_log` {TO}")
    v = judge(lines, "d", "wp_")
    assert v.missing == {"wp_formrelay_log": ["INSERT", "DELETE"], "wp_posts": ["SELECT"]}
    assert v.missing_wpforms == ["wp_wpforms_entries"] and v.extras == []


def test_column_grants_and_quoted_names():
    lines = [f"GRANT SELECT (option_name, option_value) ON `d`.`wp_options` {TO}",
             f"GRANT SELECT ON `we``ird`.`t` {TO}"]
    v = judge(lines, "d", "wp_")
    assert "wp_options" not in v.missing and v.extras == ["SELECT on `we`ird`.`t`"]
