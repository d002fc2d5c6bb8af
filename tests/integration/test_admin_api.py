"""The dashboard's JSON API (/admin/v1, docs/dashboard.md) on the real Flask app and a
scratch database, through signed requests.

The helpers here (a signed client, jobs in every status) serve test_admin_views too.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from sidecar.breaker import Policy
from sidecar.pause import Pause
from sidecar.signing import sign_admin
from sidecar.states import Event, EventKind
from sidecar.store import NewDocument, NewJob, Store
from sidecar.web import create_app
from tests.conftest import PREFIX

pytestmark = pytest.mark.db

SECRET = "admin-test-secret-0123456789"
USER = "alice"
K = EventKind
JOB_KEYS = {"id", "reference", "form_id", "entry_id", "status", "phase", "attempts",
            "max_attempts", "next_attempt_at", "documents_uploaded", "documents_total",
            "last_error", "error_category", "partner_record_id", "partner", "created_at",
            "updated_at"}
XSS = ('<script>alert(1)</script>', '"><img src=x onerror=alert(1)>')


@dataclass
class Signed:
    """A test client that signs as the plugin does; records what the app rang."""

    client: FlaskClient
    rings: list[tuple[str, int, int]] = field(default_factory=list)
    user: str = USER

    def open(self, method: str, uri: str, body: bytes = b"", *, user: str | None = None,
             sign_user: str | None = None, ts: int | None = None, secret: str = SECRET,
             sign_uri: str | None = None, sign_method: str | None = None,
             sign_body: bytes | None = None, headers: dict[str, str] | None = None,
             nonce: str | None = None) -> TestResponse:
        stamp = str(int(time.time()) if ts is None else ts)
        acting = self.user if user is None else user
        nonce = secrets.token_hex(16) if nonce is None else nonce  # as the plugin: one each
        signature = sign_admin(secret, stamp, nonce, sign_method or method, sign_uri or uri,
                               acting if sign_user is None else sign_user,
                               body if sign_body is None else sign_body)
        sent = {"X-FormRelay-Timestamp": stamp, "X-FormRelay-Nonce": nonce,
                "X-FormRelay-User": acting, "X-FormRelay-Signature": signature,
                **(headers or {})}
        return self.client.open(uri, method=method, data=body, headers=sent,
                                content_type="application/json" if method == "POST" else None)

    def get(self, path: str, **params: Any) -> TestResponse:
        return self.open("GET", uri(path, params))

    def post(self, path: str, body: Any = None, **kw: Any) -> TestResponse:
        raw = b"{}" if body is None else json.dumps(body).encode()
        return self.open("POST", "/admin/v1" + path, raw, **kw)

    def ok(self, path: str, **params: Any) -> Any:
        resp = self.get(path, **params)
        assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
        return resp.get_json() if resp.is_json else resp.get_data(as_text=True)


def uri(path: str, params: dict[str, Any]) -> str:
    """As the plugin sends it: RFC 3986 encoding, empty values left out."""
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")}, quote_via=quote)
    return "/admin/v1" + path + ("?" + query if query else "")


class Rings(list[tuple[str, int, int]]):
    """A doorbell keeping ("job" | "document", id, priority) rings."""

    def ring_record(self, job_id: int, priority: int, delay: float = 0) -> None:
        self.append(("job", job_id, priority))

    def ring_document(self, document_id: int, priority: int, delay: float = 0) -> None:
        self.append(("document", document_id, priority))


@pytest.fixture
def admin(store: Store) -> Iterator[Signed]:
    rings = Rings()
    app = create_app(store, SECRET, rings)
    yield Signed(app.test_client(), rings)


def sql(store: Store, query: str, *args: Any) -> list[dict[str, Any]]:
    with store.db.transaction() as cur:
        cur.execute(query.replace("{p}", PREFIX), args)
        return list(cur.fetchall()) if cur.with_rows else []


def snapshot_of(fields: dict[str, tuple[str, str]]) -> str:
    """A bridge snapshot with fields id -> (name, value)."""
    return json.dumps({"version": 1, "form_id": 12, "entry_id": 1, "fields": {
        fid: {"id": int(fid), "name": name, "value": value, "type": "text"}
        for fid, (name, value) in fields.items()}, "files": []})


def make_job(store: Store, n: int, status: str = "pending", *, form_id: int = 12,
             reference: str | None = None, error: str = "partner answered 422: bad email",
             snapshot: str | None = None, documents: int = 0, priority: int = 10) -> int:
    """A job brought to `status` through the store's own transitions."""
    job, _ = store.enqueue(NewJob(reference or f"wpforms:{form_id}:{n}", form_id, n,
                                  snapshot or snapshot_of({"1": ("Name", f"Person {n}")}),
                                  priority=priority))
    if status == "pending":
        return job.id
    if status == "cancelled":
        store.transition_job(job.id, Event(K.CANCEL))
        return job.id
    assert store.claim_job(job.id, "w", 300) is not None
    if status == "failed":
        store.transition_job(job.id, Event(K.PERMANENT_ERROR, error=error), owner="w")
    elif status == "retrying":
        store.transition_job(job.id, Event(K.RETRYABLE_ERROR, error=error, delay=3600),
                             owner="w")
    elif status in ("completed", "documents"):
        docs = [NewDocument("4", i, f"doc{i}.pdf", f"/uploads/doc{i}.pdf", 2048)
                for i in range(documents)]
        store.transition_job(job.id, Event(K.RECORD_SENT, has_documents=bool(docs)),
                             owner="w", partner_id=f"P-{n}", documents=docs)
    return job.id


def status_of(store: Store, job_id: int) -> str:
    job = store.get_job(job_id)
    assert job is not None
    return str(job.status)


def log_rows(store: Store, job_id: int | None = None) -> list[dict[str, Any]]:
    where = "job_id = %s" if job_id is not None else "job_id IS NULL"
    return sql(store, f"SELECT event, level, message, actor FROM {{p}}formrelay_log"
                      f" WHERE {where} ORDER BY id", *([job_id] if job_id is not None else []))


# ---- the signature ------------------------------------------------------------------------

ROUTES = [("GET", "/admin/v1/stats"), ("GET", "/admin/v1/jobs?status=failed"),
          ("GET", "/admin/v1/jobs/{id}"), ("GET", "/admin/v1/logs"),
          ("GET", "/admin/v1/view/overview"), ("GET", "/admin/v1/view/jobs"),
          ("GET", "/admin/v1/view/job?id={id}"), ("GET", "/admin/v1/view/logs"),
          ("POST", "/admin/v1/jobs/{id}/retry"), ("POST", "/admin/v1/jobs/{id}/restart"),
          ("POST", "/admin/v1/jobs/{id}/cancel"), ("POST", "/admin/v1/jobs/retry"),
          ("POST", "/admin/v1/jobs/{id}/fields"), ("POST", "/admin/v1/resume")]
FORGERIES = ["unsigned", "other-secret", "bad-hex", "stale", "future", "other-user-signed",
             "no-user", "method", "path", "query", "body", "long-user"]


@pytest.mark.parametrize("method,route", ROUTES)
@pytest.mark.parametrize("forgery", FORGERIES)
def test_every_admin_route_refuses_what_is_not_signed_right(admin, store, method, route,
                                                            forgery):
    job = make_job(store, 1, "failed")
    target = route.format(id=job)
    body = json.dumps({"ids": [job]}).encode() if method == "POST" else b""
    now = int(time.time())
    kw: dict[str, Any] = {
        "unsigned": {"headers": {"X-FormRelay-Signature": "", "X-FormRelay-Timestamp": ""}},
        "other-secret": {"secret": "someone-else-secret-123"},
        "bad-hex": {"headers": {"X-FormRelay-Signature": "sha256=" + "0" * 64}},
        "stale": {"ts": now - 301},
        "future": {"ts": now + 360},  # past the 300 s window even a minute on
        "other-user-signed": {"sign_user": "mallory"},  # signed for one user, sent as another
        "no-user": {"user": ""},
        "method": {"sign_method": "GET" if method == "POST" else "POST"},
        "path": {"sign_uri": target.replace("/admin/v1/", "/admin/v1//")},
        "query": {"sign_uri": target + ("&" if "?" in target else "?") + "x=1"},
        "body": {"sign_body": body + b" "},
        "long-user": {"user": "u" * 61},
    }[forgery]
    before = sql(store, "SELECT COUNT(*) AS n FROM {p}formrelay_log")[0]["n"]
    resp = admin.open(method, target, body, **kw)
    assert resp.status_code == 401, resp.get_data(as_text=True)[:300]
    assert set(resp.get_json()) == {"error"}
    assert status_of(store, job) == "failed"
    assert sql(store, "SELECT COUNT(*) AS n FROM {p}formrelay_log")[0]["n"] == before
    assert admin.rings == []


def test_a_signed_post_is_accepted_once(admin, store):
    job = make_job(store, 1, "failed")
    ts, nonce = int(time.time()), secrets.token_hex(16)
    assert admin.post(f"/jobs/{job}/retry", ts=ts, nonce=nonce).status_code == 200
    store.transition_job(job, Event(K.CANCEL))
    again = admin.post(f"/jobs/{job}/retry", ts=ts, nonce=nonce)
    assert again.status_code == 401 and again.get_json() == {"error": "replayed request"}
    assert status_of(store, job) == "cancelled"
    # A nonce is the request's: the same one under another timestamp is refused too.
    later = admin.post(f"/jobs/{job}/restart", ts=ts - 1, nonce=nonce)
    assert later.status_code == 401 and later.get_json() == {"error": "replayed request"}


def test_two_identical_posts_in_one_second_are_both_accepted(admin, store):
    job = make_job(store, 1, "pending")
    ts = int(time.time())
    first = admin.post(f"/jobs/{job}/cancel", ts=ts)
    second = admin.post(f"/jobs/{job}/cancel", ts=ts)  # the same click again: its own nonce
    assert first.status_code == 200, first.get_json()
    assert second.status_code == 409, second.get_json()  # answered, not refused as a replay


def test_a_dot_moved_between_the_query_and_the_user_is_refused(admin, store):
    """Signed for ?search=a by user x.y; sent for ?search=a.x by user y (issue 11, item 3)."""
    make_job(store, 1, "failed")
    signed_for = {"sign_uri": "/admin/v1/jobs?search=a", "sign_user": "x.y"}
    assert admin.open("GET", "/admin/v1/jobs?search=a", user="x.y").status_code == 200
    resp = admin.open("GET", "/admin/v1/jobs?search=a.x", user="y", **signed_for)
    assert resp.status_code == 401 and resp.get_json() == {"error": "bad signature"}


def test_a_request_without_a_nonce_is_refused(admin, store):
    job = make_job(store, 1, "failed")
    for nonce in ("", "not-hex", "A" * 32):
        resp = admin.post(f"/jobs/{job}/retry", headers={"X-FormRelay-Nonce": nonce})
        assert resp.status_code == 401, nonce
    assert status_of(store, job) == "failed"


def test_gets_may_repeat_and_a_utf8_user_names_the_actor(admin, store):
    job = make_job(store, 1, "failed")
    assert admin.get("/stats").status_code == admin.get("/stats").status_code == 200
    # WordPress logins are usually ASCII; a UTF-8 one is signed and logged as UTF-8 bytes.
    stamp, nonce = str(int(time.time())), secrets.token_hex(16)
    target = f"/admin/v1/jobs/{job}/retry"
    signature = sign_admin(SECRET, stamp, nonce, "POST", target, "zoë", b"{}")
    resp = admin.client.post(target, data=b"{}", content_type="application/json", headers={
        "X-FormRelay-Timestamp": stamp, "X-FormRelay-Signature": signature,
        "X-FormRelay-Nonce": nonce,
        "X-FormRelay-User": "zoë".encode().decode("latin-1")})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert log_rows(store, job)[-1]["actor"] == "zoë"


# ---- stats --------------------------------------------------------------------------------

def test_stats_counts_ages_pause_workers_and_the_hourly_series(admin, store):
    for n, status in enumerate(["pending", "pending", "retrying", "failed", "completed",
                                "cancelled"], 1):
        make_job(store, n, status)
    oldest = make_job(store, 7, "pending")
    sql(store, "UPDATE {p}formrelay_jobs SET created_at = UTC_TIMESTAMP(3) - INTERVAL 2 HOUR"
               " WHERE id = %s", oldest)
    sql(store, "DELETE FROM {p}formrelay_workers")
    store.heartbeat("web1:11", "web1", 11, "0.1.0", "thread", 4, beat_seconds=15)
    store.heartbeat("web2:22", "web2", 22, "0.1.0", "process", 2, beat_seconds=15)
    # silent by the sweep's rule: 2 beats of 15 s plus 15 s, long past
    sql(store, "UPDATE {p}formrelay_workers SET last_seen = UTC_TIMESTAMP(3) - INTERVAL 5 MINUTE"
               " WHERE id = 'web2:22'")
    stats = admin.ok("/stats")
    assert stats["counts"] == {"pending": 3, "processing": 0, "retrying": 1, "completed": 1,
                               "failed": 1, "cancelled": 1}
    assert stats["waiting"] == 4
    assert 7190 < stats["oldest_waiting_seconds"] < 7300
    assert stats["pause"] == {"paused": False, "cause": "", "since": None, "sticky": False,
                              "next_probe_at": None, "failures": 0}
    workers = {w["id"]: w for w in stats["workers"]}
    assert set(workers) == {"web1:11", "web2:22"}
    assert set(workers["web1:11"]) == {"id", "host", "pid", "version", "worker_type", "threads",
                                       "last_seen", "seconds_since_seen", "silent"}
    assert workers["web1:11"]["silent"] is False and workers["web2:22"]["silent"] is True
    assert 290 < workers["web2:22"]["seconds_since_seen"] < 400
    assert len(stats["hourly"]) == 24
    assert [h["delivered"] for h in stats["hourly"]][-1] == 1  # the completed job, this hour
    assert [h["failed"] for h in stats["hourly"]][-1] == 1


def test_the_hourly_series_buckets_by_hour_and_keeps_24_hours(admin, store):
    done = [make_job(store, n, "completed") for n in range(1, 5)]
    failed = [make_job(store, n, "failed") for n in range(5, 8)]
    for job_id, hours_ago in zip(done, (1, 1, 5, 30), strict=True):
        sql(store, "UPDATE {p}formrelay_jobs SET completed_at = UTC_TIMESTAMP(3)"
                   " - INTERVAL %s HOUR WHERE id = %s", hours_ago, job_id)
    for job_id, hours_ago in zip(failed, (0, 23, 24), strict=True):
        sql(store, "UPDATE {p}formrelay_jobs SET failed_at = UTC_TIMESTAMP(3)"
                   " - INTERVAL %s HOUR WHERE id = %s", hours_ago, job_id)
    hourly = admin.ok("/stats")["hourly"]
    delivered = {23 - i: h["delivered"] for i, h in enumerate(hourly) if h["delivered"]}
    lost = {23 - i: h["failed"] for i, h in enumerate(hourly) if h["failed"]}
    assert delivered == {1: 2, 5: 1}  # hours ago -> count; 30 hours ago is out
    assert lost == {0: 1, 23: 1}
    hours = [h["hour"] for h in hourly]
    assert hours == sorted(hours) and all(h.endswith(":00:00.000") for h in hours)


def test_stats_show_a_pause_and_resume_ends_it_naming_the_user(admin, store):
    waiting = make_job(store, 1, "pending", priority=3)
    Pause(store, Policy()).refused("partner answered 401 Unauthorized", auth=True)
    pause = admin.ok("/stats")["pause"]
    assert pause["paused"] is True and pause["sticky"] is True
    assert pause["cause"] == "partner answered 401 Unauthorized"
    assert pause["since"] is not None and pause["since"][:4].isdigit()
    resp = admin.post("/resume")
    assert resp.status_code == 200 and resp.get_json() == {"resumed": True}
    resumed = [r for r in log_rows(store) if r["event"] == "delivery.resumed"]
    assert len(resumed) == 1 and resumed[0]["actor"] == USER and USER in resumed[0]["message"]
    assert admin.ok("/stats")["pause"]["paused"] is False
    assert ("job", waiting, 3) in admin.rings  # the backlog is rung
    again = admin.post("/resume")  # a second click, maybe in the same second: its own nonce
    assert again.status_code == 200 and again.get_json() == {"resumed": False}
    assert len([r for r in log_rows(store) if r["event"] == "delivery.resumed"]) == 1


def test_a_named_partners_pause_shows_with_its_name_and_resume_ends_every_pause(admin, store):
    Pause(store, Policy(), partner="ehr").refused("HTTP 401 auth", auth=True)
    Pause(store, Policy(), partner="labs").refused("HTTP 403 auth", auth=True)
    pause = admin.ok("/stats")["pause"]
    assert pause["paused"] is True and pause["cause"].startswith("partner ")
    assert admin.post("/resume").get_json() == {"resumed": True}
    assert admin.ok("/stats")["pause"]["paused"] is False
    assert len([r for r in log_rows(store) if r["event"] == "delivery.resumed"]) == 2


# ---- the jobs list ------------------------------------------------------------------------

@pytest.fixture
def listed(store: Store) -> dict[str, int]:
    """Ten jobs over two forms and every status, created a day apart (newest last)."""
    plan = [("pending", 12), ("failed", 12), ("completed", 14), ("failed", 14),
            ("retrying", 12), ("cancelled", 14), ("completed", 12), ("failed", 12),
            ("processing", 14), ("pending", 12)]
    ids = {}
    for n, (status, form) in enumerate(plan, 1):
        ids[f"{status}-{n}"] = make_job(store, n, status, form_id=form,
                                        error=f"partner answered 422: case{n} rejected")
        sql(store, "UPDATE {p}formrelay_jobs SET created_at = '2026-11-01 12:00:00'"
                   " + INTERVAL %s DAY WHERE id = %s", n, ids[f"{status}-{n}"])
    return ids


def ids_of(page: dict[str, Any]) -> list[int]:
    return [j["id"] for j in page["jobs"]]


def test_the_jobs_list_shape_defaults_and_status_counts(admin, listed):
    page = admin.ok("/jobs")
    assert set(page) == {"jobs", "total", "page", "per_page", "pages", "counts",
                         "search_window", "partners", "default_partner"}
    assert page["search_window"] is None  # no search: every job
    assert (page["total"], page["page"], page["per_page"], page["pages"]) == (10, 1, 20, 1)
    assert page["counts"] == {"pending": 2, "processing": 1, "retrying": 1, "completed": 2,
                              "failed": 3, "cancelled": 1}
    assert ids_of(page) == sorted(listed.values(), reverse=True)  # id desc by default
    for job in page["jobs"]:
        assert set(job) == JOB_KEYS
    failed = next(j for j in page["jobs"] if j["id"] == listed["failed-2"])
    assert failed["last_error"] == "partner answered 422: case2 rejected"
    assert (failed["status"], failed["phase"], failed["attempts"]) == ("failed", "record", 1)
    assert failed["reference"] == "wpforms:12:2" and failed["created_at"] == \
        "2026-11-03T12:00:00.000"


def test_filters_narrow_the_list_and_counts_ignore_only_the_status(admin, listed):
    page = admin.ok("/jobs", status="failed", form_id=12)
    assert ids_of(page) == [listed["failed-8"], listed["failed-2"]]
    assert page["total"] == 2
    assert page["counts"] == {"pending": 2, "processing": 0, "retrying": 1, "completed": 1,
                              "failed": 2, "cancelled": 0}
    dated = admin.ok("/jobs", **{"from": "2026-11-04", "to": "2026-11-06"})  # inclusive days
    assert sorted(ids_of(dated)) == sorted([listed["completed-3"], listed["failed-4"],
                                            listed["retrying-5"]])
    assert admin.ok("/jobs", status="cancelled", form_id=12)["jobs"] == []


def set_partner(store: Store, partner: str, *job_ids: int) -> None:
    sql(store, "UPDATE {p}formrelay_jobs SET partner = %s WHERE id IN ("
        + ", ".join(["%s"] * len(job_ids)) + ")", partner, *job_ids)


def publish_partners(store: Store, *names: str) -> None:
    """The `partners` row as `formrelay web`/`worker` write it (the first is the default)."""
    store.set_meta("partners", json.dumps([{"name": n, "profile": "default"} for n in names]))


def test_the_jobs_list_shows_and_filters_by_partner(admin, store, listed):
    """Each job's partner ('' until claimed, shown as the default partner's name); the
    filter is exact, and the default partner's also takes the jobs not yet claimed."""
    publish_partners(store, "intake", "ehr")
    ehr = [listed["failed-2"], listed["completed-3"], listed["pending-10"]]
    intake = [listed["failed-4"], listed["completed-7"], listed["failed-8"]]
    set_partner(store, "ehr", *ehr)
    set_partner(store, "intake", *intake)
    blank = sorted(set(listed.values()) - set(ehr) - set(intake), reverse=True)

    page = admin.ok("/jobs")
    assert (page["partners"], page["default_partner"]) == (["intake", "ehr"], "intake")
    shown = {j["id"]: j["partner"] for j in page["jobs"]}
    assert shown == {**dict.fromkeys(ehr, "ehr"), **dict.fromkeys(intake + blank, "intake")}

    only_ehr = admin.ok("/jobs", partner="ehr")
    assert ids_of(only_ehr) == sorted(ehr, reverse=True) and only_ehr["total"] == 3
    assert only_ehr["counts"] == {"pending": 1, "processing": 0, "retrying": 0,
                                  "completed": 1, "failed": 1, "cancelled": 0}
    default = admin.ok("/jobs", partner="intake")
    assert ids_of(default) == sorted(intake + blank, reverse=True) and default["total"] == 7
    assert admin.ok("/jobs", partner="ehr", status="failed", form_id=12)["jobs"] == [
        next(j for j in only_ehr["jobs"] if j["id"] == listed["failed-2"])]
    # With the search's union and with dates, the same rows.
    assert ids_of(admin.ok("/jobs", partner="ehr", search="case2")) == [listed["failed-2"]]
    dated = admin.ok("/jobs", partner="intake", **{"from": "2026-11-04", "to": "2026-11-06"})
    assert sorted(ids_of(dated)) == sorted([listed["failed-4"], listed["retrying-5"]])
    assert admin.ok("/jobs", partner="gone")["total"] == 0  # a valid name, no jobs

    detail = admin.ok(f"/jobs/{blank[0]}")["job"]
    assert detail["partner"] == "intake"
    assert admin.ok(f"/jobs/{ehr[0]}")["job"]["partner"] == "ehr"


def test_without_published_partners_unclaimed_jobs_are_the_default_partners(admin, store,
                                                                            listed):
    """No `partners` row (or one that cannot be read): '' is shown as "default", the name
    of the one partner of the flat settings, and filtering on it takes those jobs."""
    set_partner(store, "ehr", listed["failed-2"])
    for row in (None, "not json", '[{"name": "Bad Name"}]'):
        if row is None:
            sql(store, "DELETE FROM {p}formrelay_meta WHERE name = 'partners'")
        else:
            store.set_meta("partners", row)
        page = admin.ok("/jobs")
        assert (page["partners"], page["default_partner"]) == ([], "default"), row
        assert {j["partner"] for j in page["jobs"]} == {"ehr", "default"}
        assert admin.ok("/jobs", partner="default")["total"] == 9


@pytest.mark.parametrize("orderby", ["id", "created", "status", "attempts", "next_attempt",
                                     "updated"])
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_each_sort_order(admin, store, listed, orderby, order):
    rows = sql(store, "SELECT id, created_at, status, attempts, next_attempt_at, updated_at"
                      " FROM {p}formrelay_jobs")
    column = {"id": "id", "created": "created_at", "status": "status", "attempts": "attempts",
              "next_attempt": "next_attempt_at", "updated": "updated_at"}[orderby]

    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        value = r[column]
        first = (value is not None, value)  # NULL sorts first ascending, as MySQL does
        return (first, r["created_at"], r["id"]) if orderby == "status" else (first, r["id"])

    want = [r["id"] for r in sorted(rows, key=key, reverse=order == "desc")]
    got = admin.ok("/jobs", orderby=orderby, order=order, per_page=4)
    assert ids_of(got) == want[:4]
    assert ids_of(admin.ok("/jobs", orderby=orderby, order=order, per_page=4, page=3)) == \
        want[8:]


def test_pages_split_the_list(admin, listed):
    everything = sorted(listed.values(), reverse=True)
    pages = [admin.ok("/jobs", per_page=3, page=p) for p in (1, 2, 3, 4, 5)]
    assert [ids_of(p) for p in pages[:4]] == [everything[0:3], everything[3:6],
                                               everything[6:9], everything[9:]]
    assert pages[4]["jobs"] == [] and pages[4]["total"] == 10 and pages[0]["pages"] == 4


@pytest.mark.parametrize("params,name", [
    ({"status": "lost"}, "status"), ({"form_id": "twelve"}, "form_id"), ({"form_id": "0"},
                                                                        "form_id"),
    ({"from": "2026-13-01"}, "from"), ({"to": "01/02/2026"}, "to"),
    ({"from": "2026-11-05", "to": "2026-11-01"}, "to"), ({"orderby": "reference"}, "orderby"),
    ({"order": "up"}, "order"), ({"page": "0"}, "page"), ({"per_page": "101"}, "per_page"),
    ({"search": "x" * 201}, "search"), ({"page": "-1"}, "page"),
    ({"partner": "EHR"}, "partner"), ({"partner": "-ehr"}, "partner"),
    ({"partner": "e" * 65}, "partner"), ({"partner": "ehr'--"}, "partner"),
    ({"partner": "e hr"}, "partner"),
])
def test_a_bad_parameter_is_a_400_naming_it(admin, params, name):
    resp = admin.get("/jobs", **params)
    assert resp.status_code == 400
    assert resp.get_json()["error"].startswith(f"{name}: ")


def test_search_by_reference_ids_partner_id_and_error_words(admin, store, listed):
    def found(text: str) -> list[int]:
        return sorted(ids_of(admin.ok("/jobs", search=text)))

    assert found("wpforms:14:3") == [listed["completed-3"]]  # exact reference
    assert found("wpforms:14") == sorted(listed[k] for k in listed if k.endswith(
        ("-3", "-4", "-6", "-9")))  # reference prefix
    by_id = found(str(listed["failed-4"]))  # a job id (or an entry id that happens to equal it)
    assert listed["failed-4"] in by_id and len(by_id) <= 2
    assert found("4") == sorted({listed["failed-4"]} | ({4} & set(listed.values())))  # entry 4
    assert found("P-7") == [listed["completed-7"]]  # partner record id, exact
    assert found("case8 rejected") == [listed["failed-8"]]  # every word, anywhere
    assert found("REJECT") == sorted(listed[k] for k in ("failed-2", "failed-4", "retrying-5",
                                                         "failed-8"))  # word prefix, any case
    assert found("no such thing") == []


METACHARACTERS = ["o'brien", 'say "hi"', "100%", "a_b", "back\\slash", "x -- y",
                  "z; DROP TABLE wp_formrelay_jobs; --", "%", "_", "\\", "'", '"']


@pytest.mark.parametrize("text", METACHARACTERS)
def test_search_with_sql_metacharacters_finds_exactly_what_it_says(admin, store, text):
    wanted = make_job(store, 1, "failed", reference=f"ref:{text}", error=f"boom {text}")
    decoys = [make_job(store, n, "failed", reference=ref, error="boom plain")
              for n, ref in enumerate(["ref:o-brien", "ref:say hi", "ref:1000", "ref:axb",
                                       "ref:backxslash", "ref:plain"], 2)]
    resp = admin.get("/jobs", search=f"ref:{text}")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert ids_of(resp.get_json()) == [wanted]
    assert resp.get_json()["counts"]["failed"] == 1
    assert admin.get("/jobs", search=text).status_code == 200  # errors' words: no error
    assert sql(store, "SELECT COUNT(*) AS n FROM {p}formrelay_jobs")[0]["n"] == 1 + len(decoys)


def test_documents_are_counted_per_row(admin, store):
    job = make_job(store, 1, "documents", documents=3)
    doc = store.documents(job)[0]
    assert store.claim_document(doc.id, "w", 300) is not None
    store.transition_document(doc.id, Event(K.UPLOADED), owner="w", partner_id="D-1")
    row = admin.ok("/jobs")["jobs"][0]
    assert (row["documents_uploaded"], row["documents_total"]) == (1, 3)
    assert (row["status"], row["phase"], row["partner_record_id"]) == ("processing",
                                                                       "documents", "P-1")


# ---- one job ------------------------------------------------------------------------------

def test_a_job_in_detail_names_its_fields_without_values(admin, store):
    job = make_job(store, 1, "documents", documents=2,
                   snapshot=snapshot_of({"1": ("Name", "Jane Secretvalue"),
                                         "2": ("Email", "jane@secret.example")}))
    detail = admin.ok(f"/jobs/{job}")
    assert set(detail) == {"job", "retention", "fields", "documents", "timeline"}
    assert set(detail["job"]) == JOB_KEYS | {"source", "priority", "key_generation", "sealed_to"}
    assert detail["fields"] == [{"id": "1", "name": "Name", "type": "text"},
                                {"id": "2", "name": "Email", "type": "text"}]
    text = json.dumps(detail)
    assert "Secretvalue" not in text and "secret.example" not in text
    assert "doc0.pdf" not in text and "doc1" not in text  # file names are values: Reveal only
    assert set(detail["documents"][0]) == {"id", "position", "status", "detected_type",
                                           "size", "attempts", "max_attempts", "last_error",
                                           "error_category", "partner_document_id",
                                           "file_removed_at"}
    revealed = admin.post(f"/jobs/{job}/fields").get_json()
    assert revealed["documents"] == [{"id": d["id"], "name": f"doc{n}.pdf"}
                                     for n, d in enumerate(detail["documents"])]
    events = [e["event"] for e in detail["timeline"]]
    assert events[0] == "job.created" and "job.record_sent" in events
    assert set(detail["timeline"][0]) == {"id", "created_at", "level", "event", "message",
                                          "attempt", "http_status", "duration_ms", "actor",
                                          "document_id"}
    assert admin.get("/jobs/999999").status_code == 404


# ---- actions ------------------------------------------------------------------------------

def test_retry_resumes_a_failed_job_logs_the_actor_and_rings_it(admin, store):
    job = make_job(store, 1, "failed", priority=4)
    resp = admin.post(f"/jobs/{job}/retry")
    assert resp.status_code == 200
    summary = resp.get_json()["job"]
    assert set(summary) == JOB_KEYS
    assert (summary["status"], summary["attempts"], summary["last_error"]) == ("pending", 0,
                                                                               None)
    last = log_rows(store, job)[-1]
    assert (last["event"], last["actor"]) == ("job.retry", USER)
    assert admin.rings == [("job", job, 4)]


def test_retry_of_a_completed_job_is_409_and_changes_nothing(admin, store):
    job = make_job(store, 1, "completed")
    before = log_rows(store, job)
    resp = admin.post(f"/jobs/{job}/retry")
    assert resp.status_code == 409 and "completed" in resp.get_json()["error"]
    assert status_of(store, job) == "completed" and log_rows(store, job) == before
    assert admin.post(f"/jobs/{job}/cancel").status_code == 409
    assert admin.post("/jobs/999999/retry").status_code == 404


def test_restart_starts_over_with_a_new_key_generation(admin, store):
    job = make_job(store, 1, "completed", documents=0)
    resp = admin.post(f"/jobs/{job}/restart")
    assert resp.status_code == 200
    assert resp.get_json()["job"]["status"] == "pending"
    assert store.get_job(job).key_generation == 2  # type: ignore[union-attr]
    assert log_rows(store, job)[-1]["event"] == "job.restart"
    assert log_rows(store, job)[-1]["actor"] == USER
    processing = make_job(store, 2, "processing")
    assert admin.post(f"/jobs/{processing}/restart").status_code == 409


def test_cancel_stops_a_waiting_job(admin, store):
    job = make_job(store, 1, "retrying")
    resp = admin.post(f"/jobs/{job}/cancel")
    assert resp.status_code == 200 and resp.get_json()["job"]["status"] == "cancelled"
    assert (log_rows(store, job)[-1]["event"], log_rows(store, job)[-1]["actor"]) == (
        "job.cancel", USER)
    assert admin.rings == []


def test_retry_of_a_job_with_failed_documents_rings_each_document(admin, store):
    job = make_job(store, 1, "documents", documents=2)
    for doc in store.documents(job):
        assert store.claim_document(doc.id, "w", 300) is not None
        store.transition_document(doc.id, Event(K.PERMANENT_ERROR, error="413 too large"),
                                  owner="w")
    assert status_of(store, job) == "failed"
    resp = admin.post(f"/jobs/{job}/retry")
    assert resp.status_code == 200 and resp.get_json()["job"]["status"] == "processing"
    docs = store.documents(job)
    assert {str(d.status) for d in docs} == {"pending"}
    assert sorted(admin.rings) == sorted(("document", d.id, 10) for d in docs)
    actors = sql(store, "SELECT event, actor FROM {p}formrelay_log WHERE document_id IS NOT NULL"
                        " AND event = 'document.retry'")
    assert len(actors) == 2 and {a["actor"] for a in actors} == {USER}


def test_bulk_retry_by_ids_skips_what_cannot_be_retried(admin, store):
    failed, cancelled = make_job(store, 1, "failed"), make_job(store, 2, "cancelled")
    done = make_job(store, 3, "completed")
    resp = admin.post("/jobs/retry", {"ids": [failed, cancelled, done, 999999]})
    assert resp.status_code == 200 and resp.get_json() == {"retried": 2, "skipped": 2}
    assert [status_of(store, j) for j in (failed, cancelled, done)] == ["pending", "pending",
                                                                        "completed"]
    assert log_rows(store, failed)[-1]["actor"] == USER


def test_bulk_retry_of_all_failed_matching_a_filter(admin, store):
    a = make_job(store, 1, "failed", form_id=12, error="partner answered 503: busy")
    b = make_job(store, 2, "failed", form_id=12, error="document 1 rejected: text/html")
    c = make_job(store, 3, "failed", form_id=14, error="partner answered 503: busy")
    cancelled = make_job(store, 4, "cancelled", form_id=12)
    resp = admin.post("/jobs/retry", {"all_failed": True, "filter": {"form_id": 12,
                                                                     "search": "503"}})
    assert resp.get_json() == {"retried": 1, "skipped": 0, "more": False, "after": a}
    assert [status_of(store, j) for j in (a, b, c, cancelled)] == ["pending", "failed", "failed",
                                                                   "cancelled"]
    resp = admin.post("/jobs/retry", {"all_failed": True, "filter": {}})
    assert resp.get_json() == {"retried": 2, "skipped": 0, "more": False, "after": c}
    assert status_of(store, cancelled) == "cancelled"


def test_bulk_retry_of_all_failed_of_a_partner(admin, store):
    """The filter's partner narrows the bulk retry as it narrows the list (the default
    partner's takes the unclaimed jobs too)."""
    publish_partners(store, "intake", "ehr")
    ehr = make_job(store, 1, "failed")
    intake = make_job(store, 2, "failed")
    unclaimed = make_job(store, 3, "failed")
    set_partner(store, "ehr", ehr)
    set_partner(store, "intake", intake)
    set_partner(store, "", unclaimed)
    resp = admin.post("/jobs/retry", {"all_failed": True, "filter": {"partner": "ehr"}})
    assert resp.get_json() == {"retried": 1, "skipped": 0, "more": False, "after": ehr}
    assert [status_of(store, j) for j in (ehr, intake, unclaimed)] == ["pending", "failed",
                                                                       "failed"]
    resp = admin.post("/jobs/retry", {"all_failed": True, "filter": {"partner": "intake"}})
    assert resp.get_json()["retried"] == 2
    bad = admin.post("/jobs/retry", {"all_failed": True, "filter": {"partner": "Nope!"}})
    assert bad.status_code == 400 and bad.get_json()["error"].startswith("partner: ")


def test_a_bulk_retry_by_filter_goes_a_batch_per_call(admin, store, monkeypatch):
    from sidecar.admin import actions

    monkeypatch.setattr(actions, "BULK_BATCH", 2)  # batches of 2 instead of 200
    jobs = [make_job(store, i, "failed") for i in range(1, 6)]
    body: dict[str, object] = {"all_failed": True, "filter": {}, "after": 0}
    answers = []
    while True:
        answers.append(admin.post("/jobs/retry", body).get_json())
        if not answers[-1]["more"]:
            break
        body["after"] = answers[-1]["after"]
    assert [a["retried"] for a in answers] == [2, 2, 1]
    assert {status_of(store, j) for j in jobs} == {"pending"}


@pytest.mark.parametrize("body", [[], {}, {"ids": []}, {"ids": "1,2"}, {"ids": [1, "2"]},
                                  {"ids": [True]}, {"ids": list(range(1, 502))},
                                  {"ids": [1], "all_failed": True}, {"all_failed": False},
                                  {"all_failed": True, "filter": {"status": "failed"}},
                                  {"all_failed": True, "filter": {"form_id": "x"}},
                                  {"all_failed": True, "after": -1}])
def test_a_malformed_bulk_retry_is_a_400(admin, store, body):
    job = make_job(store, 1, "failed")
    resp = admin.post("/jobs/retry", body)
    assert resp.status_code == 400 and resp.get_json()["error"]
    assert status_of(store, job) == "failed"


# ---- reveal -------------------------------------------------------------------------------

def test_reveal_returns_the_values_and_logs_who_without_them(admin, store):
    job = make_job(store, 1, "failed", snapshot=snapshot_of({
        "1": ("Name", "Jane Secretvalue"), "2": ("Notes", XSS[0] + XSS[1])}))
    resp = admin.post(f"/jobs/{job}/fields")
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    assert resp.get_json() == {"fields": [
        {"id": "1", "name": "Name", "value": "Jane Secretvalue"},
        {"id": "2", "name": "Notes", "value": XSS[0] + XSS[1]}], "documents": []}
    revealed = [r for r in log_rows(store, job) if r["event"] == "job.fields_revealed"]
    assert len(revealed) == 1 and revealed[0]["actor"] == USER
    every = json.dumps(sql(store, "SELECT * FROM {p}formrelay_log"), default=str)
    assert "Secretvalue" not in every and "onerror" not in every


def test_reveal_after_retention_is_404_and_without_a_snapshot_reads_wpforms(
        admin, store, wpforms_tables):
    kept = make_job(store, 1, "completed")
    sql(store, "UPDATE {p}formrelay_jobs SET snapshot = NULL WHERE id = %s", kept)
    resp = admin.post(f"/jobs/{kept}/fields")
    assert resp.status_code == 404
    assert resp.get_json() == {"error": "the submitted values were deleted by retention"}
    assert admin.ok(f"/jobs/{kept}")["fields"] == []
    sql(store, "INSERT INTO {p}wpforms_entries (entry_id, form_id, post_id, user_id, status,"
               " type, fields, meta, date, date_modified, ip_address, user_agent, user_uuid)"
               " VALUES (77, 12, 0, 0, '', '', %s, '', NOW(), NOW(), '', '', '')",
        json.dumps({"3": {"id": 3, "name": "Phone", "value": "555-0100", "type": "phone"}}))
    backfilled, _ = store.enqueue(NewJob("wpforms:12:77", 12, 77, None, "backfill"))
    assert admin.post(f"/jobs/{backfilled.id}/fields").get_json() == {
        "fields": [{"id": "3", "name": "Phone", "value": "555-0100"}], "documents": []}
    assert admin.ok(f"/jobs/{backfilled.id}")["fields"] == [
        {"id": "3", "name": "Phone", "type": "phone"}]
    assert admin.post("/jobs/999999/fields").status_code == 404


# ---- the log ------------------------------------------------------------------------------

def test_the_log_newest_first_with_filters_and_pages(admin, store):
    jobs = [make_job(store, n, "failed", error=f"partner answered 503: marker{n}")
            for n in range(1, 4)]
    page = admin.ok("/logs", per_page=2)
    assert set(page) == {"logs", "page", "per_page", "has_more"}
    assert page["has_more"] is True and len(page["logs"]) == 2
    assert set(page["logs"][0]) == {"id", "created_at", "level", "event", "message", "job_id",
                                    "document_id", "attempt", "http_status", "duration_ms",
                                    "actor"}
    everything = admin.ok("/logs", per_page=200)["logs"]
    assert everything[0]["id"] == max(e["id"] for e in everything)
    assert [e["id"] for e in everything] == sorted((e["id"] for e in everything), reverse=True)
    assert not admin.ok("/logs", per_page=200)["has_more"]
    errors = admin.ok("/logs", level="error")["logs"]
    assert errors and {e["level"] for e in errors} == {"error"}
    assert {e["event"] for e in admin.ok("/logs", event="job.created")["logs"]} == {"job.created"}
    assert {e["job_id"] for e in admin.ok("/logs", job_id=jobs[1])["logs"]} == {jobs[1]}
    found = admin.ok("/logs", search="MARKER2 answered")["logs"]
    assert [(e["job_id"], e["event"]) for e in found] == [(jobs[1], "job.permanent_error")]
    assert admin.ok("/logs", search="marker2", job_id=jobs[1])["logs"] == found
    assert admin.ok("/logs", search="marker2", job_id=jobs[0])["logs"] == []
    assert admin.ok("/logs", **{"from": "2000-01-01", "to": "2000-01-02"})["logs"] == []
    assert admin.get("/logs", search="a of").status_code == 400  # no word the index holds
    assert admin.get("/logs", level="<b>").get_json()["error"].startswith("level: ")
