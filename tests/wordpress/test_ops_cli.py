"""`wp formrelay status|retry <id>|resume` (issue 12, item 8) against WordPress and the real
sidecar (`formrelay web` on the site's database), through the plugin's signed bridge.

Debian 12 packages no WP-CLI. Its API is stood in for by tests/wordpress/wp_cli/standin.php,
loaded before WordPress (php -d auto_prepend_file), so the plugin registers its command as
it does under WP-CLI and the command class runs for real: the capability check, the signed
request, the sidecar's answers. That stand-in is the one part that cannot run here;
test_the_real_wp_cli_runs_the_command runs the real `wp` where one is on PATH.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.wordpress import LocalWordPress
from devstack.wordpress.php import run_snippet
from tests.wordpress import ops_fixtures as ops
from tests.wordpress.bridge_fixtures import closed_port, plugin_problems
from tests.wordpress.dashboard_fixtures import (
    EDITOR,
    NO_ADMIN_API,
    RealSidecar,
    dashboard_site,
    point_at,
    serving_sidecar,
    sidecar_has_admin_api,
)

pytestmark = [
    pytest.mark.wordpress, pytest.mark.db, pytest.mark.slow,
    pytest.mark.skipif(not sidecar_has_admin_api(), reason=NO_ADMIN_API),
]

__all__ = ["dashboard_site"]  # a fixture, used by name

STANDIN = Path(__file__).resolve().parent / "wp_cli" / "standin.php"


@pytest.fixture(scope="module")
def sidecar(dashboard_site, tmp_path_factory) -> Iterator[RealSidecar]:
    with serving_sidecar(dashboard_site.wp, tmp_path_factory.mktemp("sidecar")) as running:
        yield running


@pytest.fixture
def wp(dashboard_site, sidecar) -> Iterator[LocalWordPress]:
    ops.reset(dashboard_site.wp)
    yield dashboard_site.wp
    ops.reset(dashboard_site.wp)


def wp_cli(wp: LocalWordPress, *argv: str, user: str | None = None
           ) -> subprocess.CompletedProcess[str]:
    """`wp formrelay <argv>` as ``user`` (what --user= does: that user is logged in)."""
    return run_snippet(
        "WP_CLI::standin_run( $snippet_args );", ("formrelay", *argv),
        runner=wp._runner_path, php_binary=wp.php_binary,
        php_ini={**wp.php_ini, "auto_prepend_file": str(STANDIN)}, docroot=wp.docroot,
        debug_log=wp.debug_log, user=user, admin=False, timeout=60, check=False)


def error(run: subprocess.CompletedProcess[str]) -> str:
    """The command's error line (WordPress 6.1 itself prints PHP 8.2 deprecations on stderr);
    the plugin's files report nothing."""
    assert plugin_problems(run.stderr) == [], run.stderr
    lines = [line for line in run.stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, run.stderr
    return lines[0]


def job_ids(wp: LocalWordPress, status: str) -> list[int]:
    with wp.db() as conn:
        cur = conn.cursor()
        cur.execute(f"SELECT id FROM {wp.table_prefix}formrelay_jobs WHERE status = %s"
                    " ORDER BY id", (status,))
        return [int(r[0]) for r in cur.fetchall()]


def last_log(wp: LocalWordPress, event: str) -> tuple[int | None, str] | None:
    with wp.db() as conn:
        cur = conn.cursor()
        cur.execute(f"SELECT job_id, actor FROM {wp.table_prefix}formrelay_log WHERE event = %s"
                    " ORDER BY id DESC LIMIT 1", (event,))
        return cur.fetchone()


def test_status_shows_a_401_pause_waiting_jobs_and_counts(wp):
    ops.pause(wp, "HTTP 401 auth: token refused", sticky=True)
    ops.waiting_jobs(wp, 3)
    ops.failed_jobs(wp, 2, "UTC_TIMESTAMP(3)")
    run = wp_cli(wp, "status", user=wp.admin_user)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("Delivery: PAUSED since ")
    assert "HTTP 401 auth: token refused" in lines[0]
    assert "Needs a person: fix the partner token, then run `wp formrelay resume`" in lines[0]
    assert lines[1].startswith("Waiting: 3 (the oldest for ")
    assert "Jobs: pending 3, processing 0, retrying 0, completed 0, failed 2, cancelled 0" in lines
    assert "Workers: 0 live, 0 silent" in lines


def test_status_as_json_is_the_sidecars_stats(wp):
    ops.waiting_jobs(wp, 2)
    run = wp_cli(wp, "status", "--format=json", user=wp.admin_user)
    assert run.returncode == 0, run.stderr
    stats = json.loads(run.stdout)
    assert stats["waiting"] == 2 and stats["pause"]["paused"] is False
    assert len(stats["hourly"]) == 24


def test_retry_requeues_a_failed_job_as_the_cli_user(wp):
    ops.failed_jobs(wp, 1, "UTC_TIMESTAMP(3)")
    (job,) = job_ids(wp, "failed")
    run = wp_cli(wp, "retry", str(job), user=wp.admin_user)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(f"Success: job #{job} is now ")
    assert job not in job_ids(wp, "failed")
    assert last_log(wp, "job.retry") == (job, wp.admin_user)


@pytest.mark.parametrize(("arg", "message"), [
    ("999999", "Error: no such job: #999999"),
    ("abc", "Error: the job id must be a positive whole number"),
    ("0", "Error: the job id must be a positive whole number"),
])
def test_retry_of_no_such_job_fails_clearly(wp, arg, message):
    run = wp_cli(wp, "retry", arg, user=wp.admin_user)
    assert run.returncode == 1
    assert error(run) == message
    assert "Success" not in run.stdout


def test_retry_of_a_job_that_may_not_be_retried_says_why(wp):
    ops.waiting_jobs(wp, 1)
    (job,) = job_ids(wp, "pending")
    run = wp_cli(wp, "retry", str(job), user=wp.admin_user)
    assert run.returncode == 1
    assert error(run).startswith("Error: the sidecar answered 409: ")
    assert error(run).endswith(f"job {job} cannot be retried in status pending")


def test_resume_ends_a_pause_and_names_the_user(wp):
    ops.pause(wp, "HTTP 401 auth", sticky=True)
    run = wp_cli(wp, "resume", user=wp.admin_user)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "Success: delivery resumed"
    assert last_log(wp, "delivery.resumed") == (None, wp.admin_user)
    status = wp_cli(wp, "status", user=wp.admin_user)
    assert status.stdout.startswith("Delivery: running")
    again = wp_cli(wp, "resume", user=wp.admin_user)
    assert again.returncode == 0 and again.stdout.strip() == "Success: delivery was not paused"


@pytest.mark.parametrize("command", [("status",), ("retry", "1"), ("resume",)])
def test_a_user_without_the_capability_is_not_allowed(wp, command):
    ops.pause(wp, "HTTP 401 auth", sticky=True)
    run = wp_cli(wp, *command, user=EDITOR)
    assert run.returncode == 1
    assert error(run) == (f"Error: not allowed: user {EDITOR} lacks the"
                                  " formrelay_manage capability")
    nobody = wp_cli(wp, *command)
    assert nobody.returncode == 1 and error(nobody).startswith("Error: not allowed: run as a user")
    assert "--user=" in nobody.stderr
    assert last_log(wp, "delivery.resumed") is None


def test_an_unreachable_sidecar_is_an_error_with_what_waits(wp, sidecar):
    ops.waiting_jobs(wp, 4)
    point_at(wp, f"http://127.0.0.1:{closed_port()}")
    try:
        run = wp_cli(wp, "status", user=wp.admin_user)
    finally:
        point_at(wp, sidecar.url)
    assert run.returncode == 1
    assert error(run).startswith("Error: FormRelay sidecar unreachable: ")
    assert error(run).endswith("Last worker heartbeat: never; submissions waiting: 4.")


def test_the_command_exists_only_under_wp_cli(wp):
    assert wp.php("echo class_exists( 'FormRelay_CLI', false ) ? 'yes' : 'no';") == "no"
    registered = wp_cli(wp, "nonexistent", user=wp.admin_user)
    assert registered.returncode == 1  # the stand-in knows the command, not the subcommand
    assert "'nonexistent' is not a registered subcommand of 'formrelay'" in registered.stderr


@pytest.mark.skipif(shutil.which("wp") is None,
                    reason="no WP-CLI `wp` on PATH (Debian 12 packages none); the command class"
                           " is tested through tests/wordpress/wp_cli/standin.php instead")
def test_the_real_wp_cli_runs_the_command(wp):
    ops.pause(wp, "HTTP 401 auth", sticky=True)
    base = ["wp", f"--path={wp.docroot}", f"--url={wp.url}"]
    status = subprocess.run([*base, f"--user={wp.admin_user}", "formrelay", "status"],
                            capture_output=True, text=True, timeout=120, check=False)
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith("Delivery: PAUSED since ")
    resume = subprocess.run([*base, f"--user={wp.admin_user}", "formrelay", "resume"],
                            capture_output=True, text=True, timeout=120, check=False)
    assert resume.returncode == 0 and "Success: delivery resumed" in resume.stdout
    refused = subprocess.run([*base, f"--user={EDITOR}", "formrelay", "resume"],
                             capture_output=True, text=True, timeout=120, check=False)
    assert refused.returncode == 1 and "not allowed" in refused.stderr
