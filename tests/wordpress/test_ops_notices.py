"""wp-admin notices (issue 12, item 2): rendered by WordPress from the site's own tables.

No sidecar runs here on purpose: the notices read MySQL only, so they must work with
the sidecar down. The dismiss actions go through admin-post.php over real HTTP with a
logged-in session, as a browser sends them.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest
import requests

from devstack.wordpress import LocalWordPress
from tests.wordpress import ops_fixtures as ops
from tests.wordpress.bridge_fixtures import login
from tests.wordpress.dashboard_fixtures import EDITOR, EDITOR_PASSWORD, dashboard_site

pytestmark = [pytest.mark.wordpress, pytest.mark.db]

__all__ = ["dashboard_site"]  # a fixture, used by name

FORM = re.compile(r'<form method="post" class="formrelay-dismiss" action="([^"]+)">(.*?)</form>',
                  re.S)
INPUT = re.compile(r'<input type="hidden"[^>]*name="([^"]+)" value="([^"]*)"')


@pytest.fixture
def wp(dashboard_site) -> Iterator[LocalWordPress]:
    ops.reset(dashboard_site.wp)
    yield dashboard_site.wp
    ops.reset(dashboard_site.wp)


def admin_of(wp: LocalWordPress) -> str:
    return wp.admin_user


# ------------------------------------------------------------------ what shows
def test_an_outage_pause_says_delivery_waits_and_resumes_by_itself(wp):
    ops.pause(wp, "5 failures in a row, the last: HTTP 503 server")
    shown = ops.notices(wp, admin_of(wp))
    paused = shown.one("paused")
    assert paused.type == "warning"
    assert "delivery is paused" in paused.text
    assert "HTTP 503 server" in paused.text and "resumes when it answers" in paused.text
    assert "needs a person" not in paused.text
    assert not paused.dismissible  # no incident behind it (the monitor has not opened one)


def test_a_401_pause_says_it_needs_a_person_to_fix_the_token_then_resume(wp):
    ops.pause(wp, "HTTP 401 auth: token expired", sticky=True)
    incident = ops.open_incident(wp, "paused", "delivery paused: needs a person", "critical")
    paused = ops.notices(wp, admin_of(wp)).one("paused")
    assert paused.type == "error"
    assert "needs a person" in paused.text
    assert "Fix the partner token" in paused.text and "Resume" in paused.text
    assert "HTTP 401 auth" in paused.text
    assert paused.incident == incident and paused.dismissible


def test_a_named_partners_pause_shows_naming_it_and_one_needing_a_person_comes_first(wp):
    ops.unpause(wp)
    ops.pause(wp, "HTTP 503 server", partner="labs")
    shown = ops.notices(wp, admin_of(wp))
    assert "partner labs: HTTP 503 server" in shown.one("paused").text
    ops.pause(wp, "HTTP 401 auth", sticky=True, partner="ehr")
    shown = ops.notices(wp, admin_of(wp))
    paused = shown.one("paused")
    assert paused.type == "error" and "partner ehr: HTTP 401 auth" in paused.text
    assert shown.queries == 2  # still two, with several pause rows


def test_no_pause_no_notice_even_while_a_stale_paused_incident_is_open(wp):
    ops.unpause(wp)
    ops.open_incident(wp, "paused", "delivery paused")
    assert ops.notices(wp, admin_of(wp)).notices == []


def test_failed_jobs_since_the_user_last_looked_are_counted_with_a_link_to_the_list(wp):
    ops.set_looked(wp, admin_of(wp), "2030-01-01 12:00:00")
    ops.failed_jobs(wp, 2, "'2030-01-01 11:59:59.999'")  # seen already
    ops.failed_jobs(wp, 3, "'2030-01-01 12:00:00.001'")
    failed = ops.notices(wp, admin_of(wp)).one("failed")
    assert failed.type == "error"
    assert "3 submissions could not be delivered" in failed.text
    assert "since you last looked" in failed.text
    href = re.search(r'class="formrelay-failed-link" href="([^"]+)"', failed.markup).group(1)
    assert html.unescape(href) == (f"{wp.url}/wp-admin/admin.php"
                                   "?page=formrelay&view=jobs&status=failed")
    assert failed.dismissible


def test_a_user_who_never_looked_is_told_of_every_failed_job(wp):
    ops.failed_jobs(wp, 1, "'2001-01-01 00:00:00'")
    failed = ops.notices(wp, admin_of(wp)).one("failed")
    assert "1 submission could not be delivered" in failed.text
    assert "since you last looked" not in failed.text


def test_no_failure_since_the_last_look_no_notice(wp):
    ops.set_looked(wp, admin_of(wp), "2030-01-01 12:00:00")
    ops.failed_jobs(wp, 4, "'2030-01-01 11:00:00'")
    assert "failed" not in ops.notices(wp, admin_of(wp)).kinds()


def test_opening_the_formrelay_page_counts_as_looking(wp, dashboard_site):
    ops.failed_jobs(wp, 2, "'2001-01-01 00:00:00'")
    session = login(wp, admin_of(wp), wp.admin_password)
    assert "formrelay-ops-failed" in session.get(f"{wp.url}/wp-admin/edit.php", timeout=30).text
    # Any view of the page; the sidecar is not running, the page still loads.
    page = session.get(f"{wp.url}/wp-admin/admin.php?page=formrelay&view=jobs&status=failed",
                       timeout=30)
    assert page.status_code == 200 and "formrelay-ops-failed" not in page.text
    seen = ops.looked(wp, admin_of(wp))
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", seen), seen
    assert "formrelay-ops-failed" not in session.get(f"{wp.url}/wp-admin/edit.php",
                                                     timeout=30).text
    ops.failed_jobs(wp, 1, f"'{seen}' + INTERVAL 1 SECOND")  # a failure after the look
    back = ops.notices(wp, admin_of(wp)).one("failed")
    assert "1 submission could not be delivered" in back.text


@pytest.mark.parametrize(
    ("workers", "waiting", "down"),
    [
        ([], 3, True),  # never a heartbeat while jobs wait
        ([600], 0, True),  # the last heartbeat 10 minutes ago (beats every 15 s)
        ([600, 5], 3, False),  # one worker live
        ([], 0, False),  # nothing ran and nothing waits: a fresh site, quiet
    ],
    ids=["none-while-waiting", "silent", "one-live", "fresh"])
def test_the_sidecar_down_notice(wp, workers, waiting, down):
    for ago in workers:
        ops.worker(wp, ago)
    ops.waiting_jobs(wp, waiting)
    shown = ops.notices(wp, admin_of(wp))
    assert ("sidecar-down" in shown.kinds()) is down
    if down:
        notice = shown.one("sidecar-down")
        assert notice.type == "error" and "the sidecar is not running" in notice.text
        assert "Start the sidecar" in notice.text
        assert ("was ever recorded" in notice.text) is (not workers)
        assert ("3 submissions are stored and wait" in notice.text) is (waiting == 3)


def test_other_open_incidents_show_their_summary_escaped(wp):
    backlog = ops.open_incident(wp, "backlog", "the oldest waiting submission is 95 minutes old")
    uploads = ops.open_incident(wp, "uploads", 'uploads unreadable <script>alert(1)</script>',
                                "critical")
    gone = ops.open_incident(wp, "no_worker", "no live worker")
    ops.resolve_incident(wp, gone)
    ops.open_incident(wp, "failed", "3 jobs failed")  # the failed-jobs notice covers it
    shown = ops.notices(wp, admin_of(wp))
    incidents = {n.incident: n for n in shown.notices if n.kind == "incident"}
    assert set(incidents) == {backlog, uploads}
    assert incidents[backlog].type == "warning" and "95 minutes old" in incidents[backlog].text
    assert incidents[uploads].type == "error"
    assert "<script>" not in shown.html and "&lt;script&gt;" in incidents[uploads].markup
    assert all(n.dismissible for n in incidents.values())


def test_a_no_worker_incident_backs_the_sidecar_down_notice(wp):
    ops.worker(wp, 600)
    incident = ops.open_incident(wp, "no_worker", "no live worker", "critical")
    shown = ops.notices(wp, admin_of(wp))
    assert shown.kinds() == ["sidecar-down"]
    assert shown.one("sidecar-down").incident == incident


# ---------------------------------------------------------------------- cost
def everything(wp: LocalWordPress) -> None:
    ops.pause(wp, "HTTP 401 auth", sticky=True)
    ops.open_incident(wp, "paused", "paused", "critical")
    ops.open_incident(wp, "backlog", "old")
    ops.failed_jobs(wp, 3, "UTC_TIMESTAMP(3)")
    ops.waiting_jobs(wp, 2)


def test_the_notices_cost_two_queries_for_an_admin(wp):
    everything(wp)
    shown = ops.notices(wp, admin_of(wp))
    assert sorted(shown.kinds()) == ["failed", "incident", "paused", "sidecar-down"]
    assert shown.queries == 2


def test_a_user_without_the_capability_sees_nothing_and_costs_no_query(wp):
    everything(wp)
    shown = ops.notices(wp, EDITOR)
    assert shown.notices == [] and shown.html == "" and shown.queries == 0


def test_the_notices_stay_quiet_on_a_database_without_the_incidents_table(wp):
    table = f"{wp.table_prefix}formrelay_incidents"
    ops.pause(wp, "HTTP 503 server")
    with wp.db() as conn:
        conn.cursor().execute(f"RENAME TABLE `{table}` TO `{table}_away`")
    try:
        run = wp.php_run("FormRelay_Notices::render();", user=admin_of(wp), admin=True)
    finally:
        with wp.db() as conn:
            conn.cursor().execute(f"RENAME TABLE `{table}_away` TO `{table}`")
    assert [n.kind for n in ops.parse(run.stdout)] == ["paused"]
    assert "formrelay" not in run.stderr.lower()


# ------------------------------------------------------------------- dismiss
def dismiss_form(page: str, kind: str) -> tuple[str, dict[str, str]]:
    """The action URL and hidden fields of the dismiss form inside the ``kind`` notice."""
    assert [n.kind for n in ops.parse(page)].count(kind) == 1
    block = page[page.index(f"formrelay-ops-{kind}"):]
    action, inner = FORM.search(block).groups()
    return html.unescape(action), {k: html.unescape(v) for k, v in INPUT.findall(inner)}


def posts_screen(session: requests.Session, wp: LocalWordPress) -> str:
    resp = session.get(f"{wp.url}/wp-admin/edit.php", timeout=30)
    assert resp.status_code == 200
    return resp.text


def test_dismissing_an_incident_keeps_it_away_and_a_new_one_shows(wp):
    ops.pause(wp, "HTTP 401 auth", sticky=True)
    first = ops.open_incident(wp, "paused", "paused", "critical")
    backlog = ops.open_incident(wp, "backlog", "old")
    session = login(wp, admin_of(wp), wp.admin_password)
    action, fields = dismiss_form(posts_screen(session, wp), "paused")
    assert fields["action"] == "formrelay_dismiss_incident" and fields["incident"] == str(first)
    resp = session.post(action, data=fields, allow_redirects=False, timeout=30)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/wp-admin/edit.php")
    assert ops.dismissed(wp, admin_of(wp)) == [first]
    after = ops.parse(posts_screen(session, wp))
    assert [n.incident for n in after] == [backlog]  # only that one went
    # The pause ends and comes back: a new incident, shown again.
    ops.resolve_incident(wp, first)
    second = ops.open_incident(wp, "paused", "paused again", "critical")
    assert ops.notices(wp, admin_of(wp)).one("paused").incident == second


def test_dismissing_the_failed_notice_counts_as_looking(wp):
    ops.failed_jobs(wp, 2, "'2001-01-01 00:00:00'")
    session = login(wp, admin_of(wp), wp.admin_password)
    action, fields = dismiss_form(posts_screen(session, wp), "failed")
    assert fields["action"] == "formrelay_dismiss_failed"
    assert session.post(action, data=fields, allow_redirects=False, timeout=30).status_code == 302
    assert "failed" not in [n.kind for n in ops.parse(posts_screen(session, wp))]
    seen = ops.looked(wp, admin_of(wp))
    ops.failed_jobs(wp, 1, f"'{seen}' + INTERVAL 1 SECOND")
    assert "failed" in [n.kind for n in ops.parse(posts_screen(session, wp))]


def test_a_forged_dismiss_is_refused(wp):
    ops.pause(wp, "HTTP 401 auth", sticky=True)
    target = ops.open_incident(wp, "paused", "paused", "critical")
    other = ops.open_incident(wp, "backlog", "old")
    session = login(wp, admin_of(wp), wp.admin_password)
    action, fields = dismiss_form(posts_screen(session, wp), "paused")
    post = lambda data: session.post(action, data=data, allow_redirects=False, timeout=30)  # noqa: E731

    assert post({**fields, "_wpnonce": "0123456789"}).status_code == 403  # a made-up nonce
    assert post({k: v for k, v in fields.items() if k != "_wpnonce"}).status_code == 403
    assert post({**fields, "incident": str(other)}).status_code == 403  # the nonce is per id
    assert post({**fields, "action": "formrelay_dismiss_failed"}).status_code == 403
    assert ops.dismissed(wp, admin_of(wp)) == []
    assert ops.looked(wp, admin_of(wp)) == ""
    assert {n.incident for n in ops.notices(wp, admin_of(wp)).notices} == {target, other}


def test_a_user_without_the_capability_cannot_dismiss_even_with_a_valid_nonce(wp):
    target = ops.open_incident(wp, "backlog", "old")
    session = login(wp, EDITOR, EDITOR_PASSWORD)
    cookie = next(c.value for c in session.cookies if c.name.startswith("wordpress_logged_in"))
    # The editor's own nonce for the action, valid in this session: only the capability refuses.
    nonce = wp.php(
        """
        $_COOKIE[ LOGGED_IN_COOKIE ] = $snippet_args[1];
        $action = 'formrelay_dismiss_incident_' . $snippet_args[0];
        $nonce  = wp_create_nonce( $action );
        echo wp_verify_nonce( $nonce, $action ) ? $nonce : 'invalid';
        """, str(target), cookie, user=EDITOR)
    assert nonce != "invalid"
    resp = session.post(f"{wp.url}/wp-admin/admin-post.php", allow_redirects=False, timeout=30,
                        data={"action": "formrelay_dismiss_incident", "incident": str(target),
                              "_wpnonce": nonce, "_wp_http_referer": "/wp-admin/"})
    assert "not allowed" in resp.text
    assert resp.status_code == 403
    assert ops.dismissed(wp, EDITOR) == []
    assert "formrelay-ops-notice" not in posts_screen(session, wp)
