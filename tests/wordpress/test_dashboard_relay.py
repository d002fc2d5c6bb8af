"""The REST bridge to the sidecar: signing, parameters, pass-through, and an unreachable sidecar.

The sidecar here is a recording stand-in over real HTTP (dashboard_fixtures.AdminSidecar):
each request the plugin makes is checked against docs/dashboard.md's signature formula,
recomputed in Python from what actually arrived on the wire.
"""

from __future__ import annotations

import json
import re

import pytest
import requests

from tests.wordpress.bridge_fixtures import BlackholeSidecar, SilentSidecar, closed_port
from tests.wordpress.dashboard_fixtures import (
    SECRET,
    AdminRequest,
    AdminSidecar,
    Reply,
    Rest,
    admin_sidecar,
    assert_signed,
    dashboard_site,
    doc_signature,
    last_seen,
    point_at,
    seed_queue,
)

pytestmark = [pytest.mark.wordpress, pytest.mark.db]

__all__ = ["admin_sidecar", "dashboard_site"]  # fixtures, used by name


@pytest.fixture
def api(dashboard_site):
    """GET/POST a route as the admin, with an application password."""
    wp = dashboard_site.wp
    auth = (wp.admin_user, dashboard_site.admin_app_password)

    def call(method: str, route: str, plain: bool = False, params: dict | None = None,
             body: object = None, timeout: float = 30) -> requests.Response:
        url = Rest(wp.url, plain).url(route, **(params or {}))
        return requests.request(method, url, auth=auth, json=body, timeout=timeout)

    return call


def only(sidecar: AdminSidecar) -> AdminRequest:
    (req,) = sidecar.take()
    return req


# ------------------------------------------------------------------ signing
TRICKY = "Zoë O'Brien & \"co\" 100%+1 a/b?c=d #x"


def test_every_request_is_signed_as_the_doc_says(dashboard_site, admin_sidecar, api):
    admin = dashboard_site.wp.admin_user
    assert api("GET", "stats").status_code == 200
    assert api("GET", "jobs", params={"search": TRICKY, "status": "failed"}).status_code == 200
    assert api("GET", "jobs/42").status_code == 200
    assert api("POST", "jobs/42/restart").status_code == 200
    assert api("POST", "jobs/retry", body={"ids": [3, "4", 3]}).status_code == 200
    assert api("GET", "view/logs", params={"search": TRICKY, "paged": 2}).status_code == 200
    sent = admin_sidecar.take()
    assert [r.method for r in sent] == ["GET", "GET", "GET", "POST", "POST", "GET"]
    for req in sent:
        assert_signed(req, admin)
    assert sent[0].body == b"" and sent[0].query == ""
    assert sent[3].body == b"{}"
    assert json.loads(sent[4].body) == {"ids": [3, 4]}
    assert sent[4].headers["content-type"] == "application/json"


def test_the_sidecars_own_verifier_accepts_the_plugins_signature(dashboard_site, admin_sidecar,
                                                                api):
    from sidecar import signing

    assert api("GET", "jobs", params={"search": TRICKY}).status_code == 200
    assert api("POST", "jobs/retry", body={"all_failed": True, "filter": {"search": TRICKY}}
               ).status_code == 200
    for req in admin_sidecar.take():
        signing.verify_admin(SECRET, req.headers["x-formrelay-timestamp"],
                             req.headers["x-formrelay-nonce"],
                             req.headers["x-formrelay-signature"], req.method, req.target,
                             req.headers["x-formrelay-user"], req.body)


def test_the_signature_covers_every_part(dashboard_site, admin_sidecar, api):
    """The Python verifier is not blind: changing any signed part breaks it."""
    api("POST", "jobs/retry", body={"ids": [5]})
    req = only(admin_sidecar)
    ts, user = req.headers["x-formrelay-timestamp"], req.headers["x-formrelay-user"]
    n = req.headers["x-formrelay-nonce"]
    good = req.headers["x-formrelay-signature"]
    assert good == doc_signature(SECRET, ts, n, "POST", req.target, user, req.body)
    for changed in (
        doc_signature(SECRET + "x", ts, n, "POST", req.target, user, req.body),
        doc_signature(SECRET, str(int(ts) + 1), n, "POST", req.target, user, req.body),
        doc_signature(SECRET, ts, n[::-1], "POST", req.target, user, req.body),
        doc_signature(SECRET, ts, n, "GET", req.target, user, req.body),
        doc_signature(SECRET, ts, n, "POST", req.target + "?x=1", user, req.body),
        doc_signature(SECRET, ts, n, "POST", req.target, user + "x", req.body),
        doc_signature(SECRET, ts, n, "POST", req.target, user, req.body + b" "),
    ):
        assert changed != good


def test_the_query_is_signed_exactly_as_sent(dashboard_site, admin_sidecar, api):
    """Spaces, quotes, '&', '%', '+', '/', '?', '#' and non-ASCII survive the HTTP library."""
    api("GET", "jobs", params={"search": TRICKY, "form_id": "12", "page": "3"})
    req = only(admin_sidecar)
    assert_signed(req, dashboard_site.wp.admin_user)
    from urllib.parse import parse_qsl

    assert parse_qsl(req.query) == [("form_id", "12"), ("search", TRICKY), ("page", "3")]
    # RFC 3986 encoding: %20 for a space, '+' encoded, nothing left raw but unreserved.
    assert "%20" in req.query and "+" not in req.query and "%2B" in req.query


def test_a_sidecar_url_with_a_path_is_signed_with_its_path(dashboard_site, admin_sidecar, api):
    point_at(dashboard_site.wp, admin_sidecar.url + "/formrelay/")
    assert api("GET", "stats").status_code == 200
    req = only(admin_sidecar)
    assert req.target == "/formrelay/admin/v1/stats"
    assert_signed(req, dashboard_site.wp.admin_user)


def test_the_cookie_user_is_the_one_named(dashboard_site, admin_sidecar):
    from tests.wordpress.dashboard_fixtures import EDITOR, EDITOR_PASSWORD, cookie_session

    wp = dashboard_site.wp
    wp.php("get_role( 'editor' )->add_cap( 'formrelay_manage' );")
    try:
        session, nonce = cookie_session(wp, EDITOR, EDITOR_PASSWORD)
        resp = session.post(Rest(wp.url).url("resume"), headers={"X-WP-Nonce": nonce},
                            timeout=30)
        assert resp.status_code == 200
    finally:
        wp.php("get_role( 'editor' )->remove_cap( 'formrelay_manage' );")
    assert_signed(only(admin_sidecar), EDITOR)


# ----------------------------------------------------------- parameters
def test_only_whitelisted_parameters_are_passed_on(admin_sidecar, api):
    params = {
        "status": "Failed", "form_id": "12", "search": "<b>needle</b>  x", "from": "2026-01-01",
        "to": "2026-01-31", "orderby": "next_attempt", "order": "ASC", "page": "2",
        "per_page": "50", "evil": "1", "_wpnonce": "n", "level": "error", "id": "3",
        "partner": " ehr ",
    }
    api("GET", "jobs", params=params)
    req = only(admin_sidecar)
    assert req.path == "/admin/v1/jobs"
    from urllib.parse import parse_qsl

    assert parse_qsl(req.query) == [
        ("status", "failed"), ("form_id", "12"), ("partner", "ehr"), ("search", "needle x"),
        ("from", "2026-01-01"), ("to", "2026-01-31"), ("orderby", "next_attempt"),
        ("order", "asc"), ("page", "2"), ("per_page", "50")]

    api("GET", "logs", params={"level": "error", "event": "Job.Retry", "job_id": "9",
                               "search": "timeout's", "status": "failed", "page": "1"})
    assert parse_qsl(only(admin_sidecar).query) == [
        ("level", "error"), ("event", "job.retry"), ("job_id", "9"), ("search", "timeout's"),
        ("page", "1")]

    api("GET", "stats", params={"status": "failed"})
    assert only(admin_sidecar).target == "/admin/v1/stats"


def test_a_bad_number_is_passed_on_for_the_sidecar_to_name(admin_sidecar, api):
    api("GET", "jobs", params={"form_id": "abc", "page": "-1"})
    assert only(admin_sidecar).query == "form_id=abc&page=-1"


def test_views_take_the_admin_pages_parameters(admin_sidecar, api):
    resp = api("GET", "view/jobs", params={"page": "formrelay", "view": "jobs",
                                           "status": "failed", "paged": "3"})
    assert resp.status_code == 200
    assert resp.json() == {"html": '<div class="formrelay-jobs" data-formrelay-refresh="jobs">'
                                   "<p>view jobs</p></div>"}
    assert only(admin_sidecar).target == "/admin/v1/view/jobs?status=failed&paged=3"
    api("GET", "view/job", params={"id": "17", "status": "x"})
    assert only(admin_sidecar).target == "/admin/v1/view/job?id=17"
    api("GET", "view/overview", params={"status": "x"})
    assert only(admin_sidecar).target == "/admin/v1/view/overview"
    assert api("GET", "view/secrets").status_code == 404
    assert admin_sidecar.take() == []


def test_bulk_retry_bodies(admin_sidecar, api):
    api("POST", "jobs/retry", body={"ids": [1, "2", "x", -3, 0, 2, {"a": 1}]})
    assert json.loads(only(admin_sidecar).body) == {"ids": [1, 2]}
    api("POST", "jobs/retry", body={"all_failed": True, "filter": {
        "form_id": "12", "search": "boom", "from": "2026-01-01", "status": "x", "evil": 1,
        "partner": "ehr"}})
    assert json.loads(only(admin_sidecar).body) == {
        "all_failed": True, "filter": {"form_id": "12", "partner": "ehr", "search": "boom",
                                       "from": "2026-01-01"},
        "after": 0}
    api("POST", "jobs/retry", body={"all_failed": True, "after": "41"})
    assert json.loads(only(admin_sidecar).body) == {"all_failed": True, "filter": {},
                                                    "after": 41}
    api("POST", "jobs/retry", body={"nothing": 1})
    assert only(admin_sidecar).body == b"{}"  # the sidecar says what is missing


def test_each_action_goes_to_its_route(admin_sidecar, api):
    for action in ("retry", "restart", "cancel", "fields"):
        assert api("POST", f"jobs/8/{action}").status_code == 200
    assert api("POST", "resume").status_code == 200
    assert [r.target for r in admin_sidecar.take()] == [
        "/admin/v1/jobs/8/retry", "/admin/v1/jobs/8/restart", "/admin/v1/jobs/8/cancel",
        "/admin/v1/jobs/8/fields", "/admin/v1/resume"]
    assert api("POST", "jobs/8/delete").status_code == 404
    assert api("GET", "jobs/8/retry").status_code == 404  # changes are POSTs only
    assert admin_sidecar.take() == []


# ------------------------------------------------------------- pass-through
@pytest.mark.parametrize("status,body", [
    (200, {"counts": {"failed": 2}, "waiting": 0, "pause": {"paused": False}}),
    (400, {"error": "per_page must be 1-100"}),
    (404, {"error": "no job 99"}),
    (409, {"error": "job 99 is processing"}),
])
@pytest.mark.parametrize("plain", [False, True], ids=["pretty", "plain"])
def test_the_sidecars_status_and_json_are_passed_through(admin_sidecar, api, status, body,
                                                          plain):
    admin_sidecar.responder = lambda req: Reply(status, body)
    resp = api("POST", "jobs/99/restart", plain=plain)
    assert resp.status_code == status
    assert resp.json() == body


def test_revealed_values_are_not_cached(admin_sidecar, api):
    admin_sidecar.responder = lambda req: Reply(200, {"fields": [{"id": "1", "name": "Name",
                                                                  "value": "Jane"}]})
    resp = api("POST", "jobs/3/fields")
    assert resp.json()["fields"][0]["value"] == "Jane"
    assert "no-store" in resp.headers["cache-control"]
    admin_sidecar.responder = lambda req: Reply(200, {"ok": True})
    assert "no-store" not in api("GET", "stats").headers["cache-control"]


# --------------------------------------------------------------- unreachable
def assert_unreachable(resp: requests.Response, heartbeat: str | None, waiting: int) -> str:
    assert resp.status_code == 503, resp.text[:500]
    body = resp.json()
    reason = body["data"].pop("reason")
    assert body == {"code": "formrelay_unreachable", "message": "FormRelay sidecar unreachable",
                    "data": {"status": 503, "last_heartbeat": heartbeat, "waiting": waiting}}
    return reason


@pytest.mark.parametrize("plain", [False, True], ids=["pretty", "plain"])
def test_a_stopped_sidecar_gives_503_with_heartbeat_and_waiting(dashboard_site, api, plain):
    wp = dashboard_site.wp
    seed_queue(wp, heartbeat_minutes_ago=7, waiting=5, done=3)
    point_at(wp, closed_port())
    heartbeat = last_seen(wp)
    for method, route in (("GET", "stats"), ("GET", "jobs"), ("POST", "jobs/1/retry"),
                          ("GET", "view/overview"), ("POST", "resume")):
        reason = assert_unreachable(api(method, route, plain=plain), heartbeat, 5)
        assert "refused" in reason.lower() or "connect" in reason.lower(), reason


def test_never_a_heartbeat_is_null(dashboard_site, api):
    seed_queue(dashboard_site.wp, heartbeat_minutes_ago=None, waiting=0)
    point_at(dashboard_site.wp, closed_port())
    assert_unreachable(api("GET", "stats"), None, 0)


@pytest.mark.parametrize("reply,reason", [
    (Reply(401, {"error": "bad signature"}), "HTTP 401: bad signature"),
    (Reply(500, "<h1>Internal Server Error</h1>", "text/html"), "HTTP 500"),
    (Reply(502, {"error": "bad gateway"}), "HTTP 502: bad gateway"),
    (Reply(302, b"", "text/html"), "HTTP 302"),
    (Reply(200, "<html>not the sidecar</html>", "text/html"), "HTTP 200: not a FormRelay answer"),
])
def test_answers_that_are_not_the_sidecars_count_as_unreachable(dashboard_site, admin_sidecar,
                                                                api, reply, reason):
    seed_queue(dashboard_site.wp, heartbeat_minutes_ago=1, waiting=2)
    admin_sidecar.responder = lambda req: reply
    got = assert_unreachable(api("GET", "stats"), last_seen(dashboard_site.wp), 2)
    assert got.startswith(reason), got


def test_a_view_that_answers_json_is_not_a_view(dashboard_site, admin_sidecar, api):
    seed_queue(dashboard_site.wp, heartbeat_minutes_ago=None, waiting=1)
    admin_sidecar.responder = lambda req: Reply(200, {"html": "x"})
    assert_unreachable(api("GET", "view/overview"), None, 1)
    admin_sidecar.responder = lambda req: Reply(404, {"error": "no job 5"})
    resp = api("GET", "view/job", params={"id": "5"})
    assert (resp.status_code, resp.json()) == (404, {"error": "no job 5"})


def test_an_unconfigured_bridge_is_unreachable(dashboard_site, api):
    seed_queue(dashboard_site.wp, heartbeat_minutes_ago=None, waiting=0)
    point_at(dashboard_site.wp, "", secret="")
    try:
        reason = assert_unreachable(api("GET", "stats"), None, 0)
    finally:
        point_at(dashboard_site.wp, closed_port())
    assert "not set" in reason


def timed_out_after_ms(reason: str) -> int:
    """The milliseconds cURL reports in its timeout message ("after 2001 ms")."""
    found = re.search(r"after (\d+) (?:ms|milliseconds)", reason)
    assert found, reason
    return int(found.group(1))


def test_a_silent_host_costs_the_connect_timeout(dashboard_site, api):
    seed_queue(dashboard_site.wp, heartbeat_minutes_ago=None, waiting=0)
    blackhole = BlackholeSidecar()
    try:
        point_at(dashboard_site.wp, blackhole.url)
        reason = assert_unreachable(api("GET", "stats"), None, 0)
    finally:
        blackhole.close()
    # cURL names the timeout that fired and when: the 2 s connect timeout, not the 8 s one.
    assert "Failed to connect" in reason and 2000 <= timed_out_after_ms(reason) < 3000, reason


def test_a_hung_sidecar_costs_the_request_timeout(dashboard_site, api):
    seed_queue(dashboard_site.wp, heartbeat_minutes_ago=None, waiting=0)
    silent = SilentSidecar()
    try:
        point_at(dashboard_site.wp, silent.url)
        reason = assert_unreachable(api("GET", "stats", timeout=60), None, 0)
    finally:
        silent.close()
    assert "timed out" in reason.lower(), reason
    assert 8000 <= timed_out_after_ms(reason) < 9000, reason  # the whole request's 8 s
