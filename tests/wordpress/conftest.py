"""Fixtures for tests against a real local WordPress (PHP, Debian's package, MariaDB).

`wordpress` is one site for the whole session with FormRelay Bridge active;
`bridge_site` is one per test module with the bridge active and no FORMRELAY_*
constants, and `wp` is that site reset (reset_bridge) before each test;
`make_wordpress` builds extra sites for tests that change a site's state.
Every site is taken down (server stopped, database dropped, directory removed)
even when a test fails; the logs of a site whose tests failed are copied to
artifacts/wordpress/ first.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mysql.connector
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # devstack/ is not an installed package
    sys.path.insert(0, str(REPO_ROOT))

from devstack.wordpress import LocalWordPress  # noqa: E402

# Its assert helpers should report like assertions in the tests themselves.
pytest.register_assert_rewrite("tests.wordpress.schema_snapshot")

BRIDGE_SOURCE = REPO_ROOT / "wp_bridge_plugin"
BRIDGE_SLUG = "formrelay-bridge"
BRIDGE_FILE = f"{BRIDGE_SLUG}/formrelay-bridge.php"
ARTIFACTS = REPO_ROOT / "artifacts" / "wordpress"
NOTICE = re.compile(r'<div class="notice notice-(\w+) formrelay-notice"><p>(.*?)</p></div>', re.S)

# The same variables as tests/conftest.py.
_host, _, _port = os.environ.get("FORMRELAY_TEST_DB_HOST", "127.0.0.1:3306").rpartition(":")
DB_HOST = _host or "127.0.0.1"
DB_PORT = int(_port or 3306)
DB_USER = os.environ.get("FORMRELAY_TEST_DB_USER", "root")
DB_PASSWORD = os.environ.get("FORMRELAY_TEST_DB_PASSWORD", "")

# Tricky on purpose: wp-config.php must escape these for PHP.
SIDECAR_URL = "http://127.0.0.1:8787"
SHARED_SECRET = "it's a \\'secret\\' with \"quotes\", $dollars {$braces}\nand a newline \\"


def site(**overrides: Any) -> LocalWordPress:
    """A LocalWordPress for tests (not started)."""
    kwargs: dict[str, Any] = {
        "name": f"pytest-{secrets.token_hex(3)}",
        "db_host": DB_HOST,
        "db_port": DB_PORT,
        "db_user": DB_USER,
        "db_password": DB_PASSWORD,
        "artifacts_dir": ARTIFACTS,
        "constants": {
            "FORMRELAY_SIDECAR_URL": SIDECAR_URL,
            "FORMRELAY_SHARED_SECRET": SHARED_SECRET,
        },
    }
    kwargs.update(overrides)
    return LocalWordPress(**kwargs)


def server_connection(database: str | None = None) -> Any:
    """A root connection to the test MariaDB (autocommit); ``with`` closes it."""
    return mysql.connector.connect(
        host=DB_HOST,
        port=DB_PORT,
        user=DB_USER,
        password=DB_PASSWORD,
        database=database,
        autocommit=True,
    )


def deactivate_bridge(wp: LocalWordPress) -> None:
    out = wp.php(
        """
        require_once ABSPATH . 'wp-admin/includes/plugin.php';
        deactivate_plugins( $snippet_args[0] );
        echo is_plugin_active( $snippet_args[0] ) ? 'active' : 'inactive';
        """,
        BRIDGE_FILE,
        user=wp.admin_user,
        admin=True,
    )
    assert out == "inactive"


def reset_bridge(wp: LocalWordPress) -> None:
    """The settings as activation leaves them (the defaults, no secret), no jobs."""
    wp.php(
        "delete_option( 'formrelay_bridge_settings' ); delete_option( 'formrelay_bridge_secret' );"
        " FormRelay_Settings::activate();"
    )
    with wp.db() as conn:
        conn.cursor().execute(f"DELETE FROM `{wp.table_prefix}formrelay_jobs`")


def rendered_notices(wp: LocalWordPress, user: str | None = None) -> list[tuple[str, str]]:
    """The FormRelay notices the admin_notices hook prints for ``user`` (default admin)."""
    out = wp.php("do_action( 'admin_notices' );", user=user or wp.admin_user, admin=True)
    return NOTICE.findall(out)


_FAILED = pytest.StashKey[list[str]]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        item.stash.setdefault(_FAILED, []).append(report.when)


@contextlib.contextmanager
def running_site(request: pytest.FixtureRequest, **overrides: Any) -> Iterator[LocalWordPress]:
    """``site(**overrides)``, started; always taken down on leaving the ``with``.

    For fixtures wider than one test: the site's logs are saved to ARTIFACTS first
    when any test of the session failed while it was up (or its start-up failed).
    """
    wp = site(**overrides)
    failed_before = request.session.testsfailed
    try:
        wp.up()
        yield wp
    finally:
        if request.session.testsfailed > failed_before and wp.url:
            wp.save_artifacts(ARTIFACTS)
        wp.down()


@pytest.fixture(scope="session")
def wordpress(request: pytest.FixtureRequest) -> Iterator[LocalWordPress]:
    """One WordPress for the session with FormRelay Bridge active (prefix wp_)."""
    with running_site(request, plugins=[(BRIDGE_SLUG, BRIDGE_SOURCE)]) as wp:
        yield wp


@pytest.fixture(scope="module")
def bridge_site(request: pytest.FixtureRequest) -> Iterator[LocalWordPress]:
    """A WordPress for one test module: bridge active, no FORMRELAY_* constants (the
    settings come from the option, so a test can point the notify wherever it likes)."""
    with running_site(request, constants={}, plugins=[(BRIDGE_SLUG, BRIDGE_SOURCE)]) as wp:
        yield wp


@pytest.fixture
def wp(bridge_site: LocalWordPress) -> LocalWordPress:
    """`bridge_site` with no jobs and the settings as activation leaves them: the module
    shares one site, so each test starts from the same state. Modules with a site of
    their own (test_ops_*) define their own `wp`."""
    reset_bridge(bridge_site)
    return bridge_site


@pytest.fixture
def make_wordpress(request: pytest.FixtureRequest) -> Iterator[Callable[..., LocalWordPress]]:
    """Build and start extra sites; they are taken down after the test."""
    made: list[LocalWordPress] = []

    def make(**overrides: Any) -> LocalWordPress:
        wp = site(**overrides)
        made.append(wp)
        return wp.up()

    yield make
    failed = bool(request.node.stash.get(_FAILED, []))
    for wp in made:
        try:
            if failed and wp.url:
                wp.save_artifacts(ARTIFACTS)
        finally:
            wp.down()


@pytest.fixture
def scratch_database() -> Iterator[Callable[[], str]]:
    """Create empty databases (fr_test_<random>) that are dropped after the test."""
    made: list[str] = []

    def create() -> str:
        name = f"fr_test_{secrets.token_hex(5)}"
        with server_connection() as conn:
            conn.cursor().execute(
                f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
        made.append(name)
        return name

    yield create
    with server_connection() as conn:
        for name in made:
            conn.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
