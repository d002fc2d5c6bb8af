"""wp-admin → FormRelay (admin.php?page=formrelay): the view the sidecar renders, printed
inside WordPress' wrap through wp_kses(), and the "FormRelay sidecar unreachable" notice
with the last heartbeat and the waiting count when the sidecar cannot be reached.
"""

from __future__ import annotations

import json
import re

import pytest
import requests

from devstack.wordpress.logs import read_log
from tests.wordpress.bridge_fixtures import closed_port, login, plugin_problems
from tests.wordpress.dashboard_fixtures import (
    AdminSidecar,
    Reply,
    Rest,
    admin_sidecar,
    dashboard_site,
    last_seen,
    point_at,
    seed_queue,
)

pytestmark = [pytest.mark.wordpress, pytest.mark.db]

__all__ = ["admin_sidecar", "dashboard_site"]  # fixtures, used by name

PAGE = "/wp-admin/admin.php"

# What a careless or compromised sidecar could send: the page must print it inert.
HOSTILE = """<div class="formrelay-overview" data-formrelay-refresh="overview">
<h2>Overview</h2>
<script>alert('script')</script>
<p class="formrelay-error">"><img src=x onerror=alert('img')></p>
<a href="javascript:alert('href')">bad link</a>
<a class="current" href="?page=formrelay&amp;view=jobs&amp;status=failed">Failed
<span class="count">(2)</span></a>
<svg viewBox="0 0 240 60" width="240" height="60" role="img" aria-label="Per hour">
<title>chart</title><g><rect x="1" y="2" width="3" height="4" fill="#2271b1"></rect>
<line x1="0" y1="59" x2="240" y2="59" stroke="#c3c4c7"></line>
<text x="2" y="10" text-anchor="start">3</text></g></svg>
<form method="get" data-formrelay-bulk><input type="hidden" name="page" value="formrelay">
<input type="checkbox" name="job[]" value="4"><select name="status">
<option value="failed" selected>Failed</option></select>
<input type="search" name="search" value="O&#39;Brien">
<button type="submit" class="button">Retry selected</button></form>
<button type="button" class="button" data-formrelay-action="restart" data-job="4">Restart</button>
<button type="button" data-formrelay-bulk-all data-filter="{&quot;form_id&quot;:12}">All</button>
<button type="button" class="button" data-formrelay-reveal="4">Reveal</button>
<table class="wp-list-table widefat striped"><tr><th scope="row">Name</th>
<td data-field-id="1">hidden</td></tr></table>
<div onclick="alert('click')" onmouseover="alert('over')" style="color: red">styled</div>
<iframe src="https://example.com/"></iframe><object data="x"></object>
<style>body { display: none }</style>
</div>"""


@pytest.fixture(scope="module")
def admin(dashboard_site):
    wp = dashboard_site.wp
    return login(wp, wp.admin_user, wp.admin_password)


def open_page(session, wp, **params) -> str:
    resp = session.get(f"{wp.url}{PAGE}", params={"page": "formrelay", **params}, timeout=30)
    assert resp.status_code == 200, resp.text[-2000:]
    return resp.text


def wrap(page: str) -> str:
    """The page's <div class="wrap ..."> up to the footer."""
    start = page.index('<div class="wrap formrelay-dashboard">')
    return page[start:page.index('<div class="clear"></div>', start)]


# --------------------------------------------------------------- the view
def test_the_view_is_printed_inside_the_wrap(dashboard_site, admin_sidecar, admin):
    page = open_page(admin, dashboard_site.wp)
    (sent,) = admin_sidecar.take()
    assert sent.target == "/admin/v1/view/overview"
    body = wrap(page)
    # The fragment brings its own heading and tabs; the plugin adds only the wrap.
    assert body.startswith('<div class="wrap formrelay-dashboard">'
                           '<div id="formrelay-messages" aria-live="polite"></div>'
                           '<div id="formrelay-view" class="formrelay-view"'
                           ' data-formrelay-view="overview">'
                           '<div class="formrelay-overview" data-formrelay-refresh="overview">')
    assert "<h1" not in body and "nav-tab" not in body
    assert "FormRelay sidecar unreachable" not in body


def test_hostile_markup_is_printed_inert(dashboard_site, admin_sidecar, admin):
    admin_sidecar.responder = lambda req: Reply(200, HOSTILE, "text/html; charset=utf-8")
    body = wrap(open_page(admin, dashboard_site.wp))
    lowered = body.lower()
    for bad in ("<script", "onerror", "onclick", "onmouseover", "javascript:", "<iframe",
                "<object", "<style"):
        assert bad not in lowered, bad
    # kses drops the tags; what was inside them is left as harmless text.
    assert "\nalert('script')\n" in body
    # What the views need survives: links, data attributes, forms, SVG, styles.
    for kept in (
        '<a class="current" href="?page=formrelay&amp;view=jobs&amp;status=failed">',
        'data-formrelay-refresh="overview"',
        '<button type="button" class="button" data-formrelay-action="restart" data-job="4">',
        'data-formrelay-bulk-all data-filter="{&quot;form_id&quot;:12}"',
        'data-formrelay-reveal="4"',
        '<td data-field-id="1">hidden</td>',
        '<form method="get" data-formrelay-bulk>',
        '<input type="hidden" name="page" value="formrelay">',
        '<input type="checkbox" name="job[]" value="4">',
        '<option value="failed" selected>Failed</option>',
        '<input type="search" name="search" value="O&#039;Brien">',  # kses' entity form
        '<svg viewBox="0 0 240 60" width="240" height="60" role="img"',
        '<rect x="1" y="2" width="3" height="4" fill="#2271b1"></rect>',
        '<text x="2" y="10" text-anchor="start">3</text>',
        '<div style="color: red">styled</div>',
        '<img src="x">',
    ):
        assert kept in body, kept


def test_the_rest_view_is_filtered_the_same_way(dashboard_site, admin_sidecar):
    admin_sidecar.responder = lambda req: Reply(200, HOSTILE, "text/html")
    wp = dashboard_site.wp
    resp = Rest(wp.url).url("view/overview")
    got = requests.get(resp, auth=(wp.admin_user, dashboard_site.admin_app_password), timeout=30)
    page = wrap(open_page(login(wp, wp.admin_user, wp.admin_password), wp))
    fragment = got.json()["html"]
    assert "<script" not in fragment and "onerror" not in fragment
    assert fragment in page


def test_the_page_passes_on_its_whitelisted_parameters(dashboard_site, admin_sidecar, admin):
    wp = dashboard_site.wp
    open_page(admin, wp, view="jobs", status="failed", paged="2", search="O'Brien <b>x</b>",
              form_id="12", orderby="attempts", order="asc", evil="1", level="error",
              partner="ehr")
    open_page(admin, wp, view="logs", level="error", event="job.retry", job_id="7", paged="3",
              status="failed", partner="ehr")
    open_page(admin, wp, view="job", id="5", status="x")
    open_page(admin, wp, view="nonsense")
    assert [r.target for r in admin_sidecar.take()] == [
        "/admin/v1/view/jobs?status=failed&form_id=12&partner=ehr&search=O%27Brien%20x"
        "&orderby=attempts&order=asc&paged=2",
        "/admin/v1/view/logs?level=error&event=job.retry&job_id=7&paged=3",
        "/admin/v1/view/job?id=5",
        "/admin/v1/view/overview",
    ]


def test_a_sidecar_error_is_shown_as_a_notice(dashboard_site, admin_sidecar, admin):
    admin_sidecar.responder = lambda req: Reply(404, {"error": "no job 99 <b>"})
    body = wrap(open_page(admin, dashboard_site.wp, view="job", id="99"))
    assert '<h1 class="wp-heading-inline">FormRelay</h1><hr class="wp-header-end" />' \
           '<div class="notice notice-warning formrelay-view-error"><p>' \
           "The sidecar answered 404: no job 99 &lt;b&gt;</p></div>" in body
    assert 'id="formrelay-view"' not in body


def test_the_script_is_loaded_on_this_page_only(dashboard_site, admin_sidecar, admin):
    wp = dashboard_site.wp
    page = open_page(admin, wp, view="jobs", status="failed", paged="2")
    assert "admin/formrelay-dashboard.js?ver=" in page
    assert "admin/formrelay-dashboard.css?ver=" in page
    config = re.search(r"window\.formrelayDashboard = (\{.*?\});\n", page).group(1)
    data = json.loads(config)
    assert data["view"] == "jobs"
    assert data["params"] == {"status": "failed", "paged": "2"}
    assert data["refreshMs"] == 5000 and len(data["nonce"]) == 10
    other = admin.get(f"{wp.url}/wp-admin/index.php", timeout=30).text
    assert "formrelay-dashboard.js" not in other


# ------------------------------------------------------------- unreachable
def unreachable_notice(page: str) -> str:
    match = re.search(r'<div class="notice notice-error formrelay-unreachable">(.*?)</div>',
                      page, re.S)
    assert match, "no unreachable notice"
    return match.group(1)


def test_a_stopped_sidecar_shows_the_notice_heartbeat_and_waiting(dashboard_site, admin):
    wp = dashboard_site.wp
    seed_queue(wp, heartbeat_minutes_ago=7, waiting=5, done=3)
    point_at(wp, closed_port())
    heartbeat = last_seen(wp)
    for view in ("overview", "jobs", "job", "logs"):
        page = open_page(admin, wp, view=view, id="3")
        notice = unreachable_notice(wrap(page))
        text = re.sub(r"<[^>]+>", "", notice)
        assert "FormRelay sidecar unreachable" in text
        assert f"Last worker heartbeat: {heartbeat[:19].replace('T', ' ')} UTC (7 mins ago)" \
            in text, text
        assert "Submissions waiting: 5." in text, text
        assert "Reason: cURL error 7" in text, text
        assert '<h1 class="wp-heading-inline">FormRelay</h1>' in page  # the page still works


def test_no_heartbeat_ever_says_never(dashboard_site, admin):
    wp = dashboard_site.wp
    seed_queue(wp, heartbeat_minutes_ago=None, waiting=1200)
    point_at(wp, closed_port())
    text = re.sub(r"<[^>]+>", "", unreachable_notice(open_page(admin, wp)))
    assert "Last worker heartbeat: never" in text
    assert "Submissions waiting: 1,200." in text


def test_a_refused_signature_shows_the_notice_with_the_reason(dashboard_site, admin_sidecar,
                                                              admin):
    wp = dashboard_site.wp
    seed_queue(wp, heartbeat_minutes_ago=1, waiting=2)
    admin_sidecar.responder = lambda req: Reply(401, {"error": "bad signature"})
    text = re.sub(r"<[^>]+>", "", unreachable_notice(open_page(admin, wp)))
    assert "Submissions waiting: 2." in text
    assert "Reason: HTTP 401: bad signature" in text


@pytest.mark.parametrize("status", [500, 503])
def test_a_failing_sidecar_shows_the_notice(dashboard_site, admin_sidecar: AdminSidecar, admin,
                                            status):
    seed_queue(dashboard_site.wp, heartbeat_minutes_ago=None, waiting=0)
    admin_sidecar.responder = lambda req: Reply(status, "<h1>oops</h1>", "text/html")
    text = re.sub(r"<[^>]+>", "", unreachable_notice(open_page(admin, dashboard_site.wp)))
    assert f"Reason: HTTP {status}" in text and "oops" not in text


# ------------------------------------------------------------------ hygiene
def test_no_php_notices_from_the_dashboard(dashboard_site):
    """Everything this module did to the page and the REST routes, under WP_DEBUG."""
    wp = dashboard_site.wp
    log = read_log(wp.debug_log, 0, max_bytes=50_000_000)
    server_log = read_log(wp.server_log, 0, max_bytes=50_000_000)
    assert "PHP Deprecated" in log  # WordPress 6.1's own, on PHP 8.2: logging works
    assert plugin_problems(log) == []
    assert plugin_problems(server_log) == []
    assert "WordPress database error" not in log
