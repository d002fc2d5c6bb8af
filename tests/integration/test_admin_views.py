"""The dashboard's HTML views (/admin/v1/view/...): WordPress admin markup, the data
attributes the plugin's script wires, relative links, escaping of everything, the chart;
and the signed routes over real HTTP (waitress), where the path and query are raw."""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from typing import Any

import pytest
import requests
from waitress.server import create_server

from sidecar.admin import chart as geometry
from sidecar.breaker import Policy
from sidecar.doorbell import Recorded
from sidecar.pause import Pause
from sidecar.signing import sign_admin
from sidecar.states import Event, EventKind
from sidecar.store import LogEntry, Store
from sidecar.web import create_app
from tests.conftest import wait_until
from tests.integration.test_admin_api import (
    SECRET,
    USER,
    XSS,
    Signed,
    admin,
    make_job,
    snapshot_of,
    sql,
)

pytestmark = pytest.mark.db
__all__ = ["admin"]  # a fixture, used by name


class Page(HTMLParser):
    """The start tags of a fragment (tag, attributes) and its text, for assertions."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.html = html
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        """Elements whose attributes hold these values (class: one of its classes)."""
        found = []
        for name, have in self.tags:
            if name != tag:
                continue
            ok = True
            for key, want in attrs.items():
                key = key.rstrip("_").replace("_", "-")
                if key == "class":
                    ok &= set(want.split()) <= set(have.get("class", "").split())
                elif want == "*":
                    ok &= key in have
                else:
                    ok &= have.get(key) == want
            if ok:
                found.append(have)
        return found

    @property
    def words(self) -> str:
        return " ".join(" ".join(self.text).split())


def view(admin: Signed, name: str, **params: Any) -> Page:
    resp = admin.get(f"/view/{name}", **params)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
    assert resp.content_type == "text/html; charset=utf-8"
    return Page(resp.get_data(as_text=True))


def assert_native_header(page: Page, current: str | None) -> None:
    assert page.find("h1", class_="wp-heading-inline")
    assert page.find("hr", class_="wp-header-end")
    tabs = {t["href"]: t for t in page.find("a", class_="nav-tab")}
    assert set(tabs) == {"?page=formrelay&view=overview", "?page=formrelay&view=jobs",
                         "?page=formrelay&view=logs"}
    active = [href for href, t in tabs.items() if "nav-tab-active" in t["class"]]
    assert active == ([f"?page=formrelay&view={current}"] if current else [])


# ---- overview -----------------------------------------------------------------------------

def test_the_overview_is_the_refresh_container_with_counts_workers_and_chart(admin, store):
    for n, status in enumerate(["pending", "failed", "failed", "completed"], 1):
        make_job(store, n, status)
    sql(store, "DELETE FROM {p}formrelay_workers")
    store.heartbeat("web1:11", "web1", 11, "0.1.0", "thread", 4, beat_seconds=15)
    store.heartbeat("web2:22", "web2", 22, "0.1.0", "thread", 4, beat_seconds=15)
    sql(store, "UPDATE {p}formrelay_workers SET last_seen = UTC_TIMESTAMP(3) - INTERVAL 10"
               " MINUTE WHERE id = 'web2:22'")
    page = view(admin, "overview")
    assert page.html.startswith('<div class="formrelay-overview" data-formrelay-refresh='
                                '"overview">')
    assert page.html.rstrip().endswith("</div>")
    assert_native_header(page, "overview")
    assert page.find("div", class_="card formrelay-counts")
    assert page.find("td", class_="formrelay-count-failed")
    assert "Failed 2" in page.words and "Pending 1" in page.words
    assert page.find("a", href="?page=formrelay&view=jobs&status=failed")
    assert "1 submission waiting" in page.words
    assert page.find("div", class_="notice notice-success")  # delivery runs
    assert not page.find("button", data_formrelay_action="resume")
    silent = page.find("tr", class_="formrelay-worker-silent")
    assert len(silent) == 1 and len(page.find("tr", class_="formrelay-worker-ok")) == 1
    assert "web2:22" in page.words and "Silent" in page.words
    svg = page.find("svg", role="img")
    assert len(svg) == 1 and svg[0]["aria-labelledby"] == \
        "formrelay-chart-title formrelay-chart-desc"
    assert page.find("title", id="formrelay-chart-title")
    assert page.find("desc", id="formrelay-chart-desc")
    assert len(page.find("rect", class_="bar-delivered")) == 24
    assert len(page.find("rect", class_="bar-failed")) == 24
    assert "http" not in page.html.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_the_chart_draws_the_known_counts(admin, store):
    done = [make_job(store, n, "completed") for n in range(1, 5)]
    for job_id in done[:3]:
        sql(store, "UPDATE {p}formrelay_jobs SET completed_at = UTC_TIMESTAMP(3)"
                   " - INTERVAL 2 HOUR WHERE id = %s", job_id)
    make_job(store, 9, "failed")  # this hour
    page = view(admin, "overview")
    delivered = page.find("rect", class_="bar-delivered")
    failed = page.find("rect", class_="bar-failed")
    plot = geometry.HEIGHT - geometry.BOTTOM - geometry.TOP  # scale: 3 -> nice 5
    heights = [float(r["height"]) for r in delivered]
    assert heights[21] == pytest.approx(plot * 3 / 5, abs=0.01)  # two hours ago
    assert heights[23] == pytest.approx(plot * 1 / 5, abs=0.01)  # this hour
    assert sum(1 for h in heights if h) == 2
    assert [float(r["height"]) for r in failed][23] == pytest.approx(plot / 5, abs=0.01)
    assert float(delivered[21]["y"]) + heights[21] == pytest.approx(geometry.HEIGHT -
                                                                    geometry.BOTTOM)
    assert "4 delivered and 1 failed in all" in page.words
    assert ": 3 delivered" in page.words


def test_a_paused_delivery_shows_its_cause_and_a_resume_button(admin, store):
    Pause(store, Policy()).refused("partner answered 403 Forbidden", auth=True)
    page = view(admin, "overview")
    assert page.find("div", class_="notice notice-warning")
    assert "Delivery is paused" in page.words and "partner answered 403 Forbidden" in page.words
    assert page.find("button", data_formrelay_action="resume", class_="button button-primary")


def test_the_overview_says_what_is_delivered_and_when_the_plugin_is_off(admin, store):
    def published(**doc: Any) -> None:
        store.set_meta("delivery_settings", json.dumps({
            "version": 1, "active_since": "2026-12-05 09:00:00.000", "form_settings": {
                "12": {"template": "intake.json.j2", "priority": 5},
                "14": {"template": None, "priority": 10, "partner": "ehr"}}, **doc}))

    published(active=True, forms=[12, 14])
    page = view(admin, "overview")
    assert "Forms 12, 14, as set in Settings > FormRelay" in page.words
    assert "12 intake.json.j2 5 default" in page.words  # no partner named: the default
    assert "14 default.json.j2 10 ehr" in page.words
    assert "intake.json.j2" in page.words and not page.find("div", class_="formrelay-delivery-off")
    assert admin.ok("/stats")["delivery"] == {
        "source": "plugin", "active": True, "creates_jobs": True,
        "active_since": "2026-12-05T09:00:00.000", "forms": [12, 14],
        "form_settings": {"12": {"template": "intake.json.j2", "priority": 5, "partner": None},
                          "14": {"template": None, "priority": 10, "partner": "ehr"}},
        "problem": ""}

    make_job(store, 1, "pending")
    make_job(store, 2, "retrying")
    published(active=False, forms="all")
    page = view(admin, "overview")
    assert page.find("div", class_="formrelay-delivery-off")
    assert ("FormRelay Bridge is deactivated: no new jobs are created; 2 queued jobs finish."
            in page.words)
    store.set_meta("delivery_settings", "{not json")
    page = view(admin, "overview")
    assert "Delivery settings not published: no new jobs are created" in page.words
    assert admin.ok("/stats")["delivery"]["creates_jobs"] is False


# ---- the jobs list ------------------------------------------------------------------------

def test_the_jobs_list_is_a_wordpress_list_table_wired_for_the_script(admin, store):
    failed = make_job(store, 1, "failed", form_id=12, error="partner answered 422: bad email")
    pending = make_job(store, 2, "pending", form_id=12)
    done = make_job(store, 3, "documents", form_id=14, documents=2)
    page = view(admin, "jobs", form_id=12)
    assert_native_header(page, "jobs")
    views = {a["href"]: a for a in page.find("a") if "status=" in a["href"] or a["href"] ==
             "?page=formrelay&view=jobs&form_id=12"}
    assert "?page=formrelay&view=jobs&status=failed&form_id=12" in views
    assert "current" in views["?page=formrelay&view=jobs&form_id=12"].get("class", "")
    assert "Failed (1)" in page.words and "Pending (1)" in page.words and "All (2)" in \
        page.words and "Processing (0)" in page.words
    assert page.find("ul", class_="subsubsub")
    assert page.find("table", class_="wp-list-table widefat fixed striped")
    boxes = page.find("input", type="checkbox", name="job[]")
    assert sorted(int(b["value"]) for b in boxes) == sorted([failed, pending])
    bulk = page.find("form", data_formrelay_bulk="*")
    assert len(bulk) == 1
    everything = page.find("button", data_formrelay_bulk_all="*")
    assert len(everything) == 1
    assert json.loads(everything[0]["data-filter"]) == {"form_id": 12, "search": "", "from": "",
                                                          "to": "", "partner": ""}
    assert page.find("button", data_formrelay_action="retry", data_job=str(failed))
    assert page.find("button", data_formrelay_action="cancel", data_job=str(pending))
    assert not page.find("button", data_formrelay_action="retry", data_job=str(pending))
    assert not page.find("button", data_job=str(done))  # another form
    assert page.find("a", href=f"?page=formrelay&view=job&id={failed}")
    row = page.words
    assert "partner answered 422: bad email" in row and "1/10" in row and "0/0" in row
    # the filter form keeps the admin page and the view as hidden fields
    assert page.find("input", type="hidden", name="page", value="formrelay")
    assert page.find("input", type="hidden", name="view", value="jobs")
    assert page.find("p", class_="search-box")
    assert page.find("input", type="search", name="search")
    assert page.find("select", name="status")
    assert page.find("input", name="form_id", value="12")
    assert page.find("input", type="date", name="from") and page.find("input", name="to")
    assert page.find("div", class_="tablenav-pages")
    docs = view(admin, "jobs", form_id=14)
    assert "0/2" in docs.words  # documents uploaded/total


def test_the_jobs_list_has_a_partner_column_and_filter(admin, store):
    """The Partner column ('' shown as the default partner), the filter's select of the
    published partners (a name no longer published kept as "(not configured)"), links and
    the bulk filter carrying it; the job view names the partner."""
    store.set_meta("partners", json.dumps([{"name": "intake", "profile": "default"},
                                           {"name": "ehr", "profile": "fhir-r4"}]))
    ehr = make_job(store, 1, "failed")
    unclaimed = make_job(store, 2, "pending")
    sql(store, "UPDATE {p}formrelay_jobs SET partner = 'ehr' WHERE id = %s", ehr)

    page = view(admin, "jobs")
    assert page.find("th", class_="column-partner")
    cells = re.findall(r'<td class="column-partner" data-colname="Partner">([^<]*)</td>',
                       page.html)
    assert cells == ["intake", "ehr"]  # newest first; the unclaimed job is the default's
    options = [o["value"] for o in page.find("option") if "value" in o and o["value"] in (
        "", "intake", "ehr")]
    assert page.find("select", name="partner") and {"intake", "ehr"} <= set(options)
    assert "intake (default)" in page.words

    narrowed = view(admin, "jobs", partner="ehr")
    assert [int(b["value"]) for b in narrowed.find("input", type="checkbox", name="job[]")] \
        == [ehr]
    assert narrowed.find("option", value="ehr", selected="")
    assert narrowed.find("a", href="?page=formrelay&view=jobs&status=failed&partner=ehr")
    (everything,) = narrowed.find("button", data_formrelay_bulk_all="*")
    assert json.loads(everything["data-filter"])["partner"] == "ehr"
    assert [int(b["value"]) for b in view(admin, "jobs", partner="intake").find(
        "input", type="checkbox", name="job[]")] == [unclaimed]
    gone = view(admin, "jobs", partner="old")
    assert gone.find("option", value="old", selected="") and "old (not configured)" in \
        gone.words

    detail = view(admin, "job", id=str(ehr))
    assert re.search(r'<th scope="row">Partner</th><td class="formrelay-job-partner">ehr</td>',
                     detail.html)

    sql(store, "DELETE FROM {p}formrelay_meta WHERE name = 'partners'")
    unpublished = view(admin, "jobs")
    assert unpublished.find("input", type="text", name="partner")  # no list to offer
    assert "default" in re.findall(r'data-colname="Partner">([^<]*)<', unpublished.html)


def test_sortable_headers_and_pagination_links(admin, store):
    for n in range(1, 6):
        make_job(store, n, "failed")
    page = view(admin, "jobs", status="failed", per_page=2, orderby="attempts", order="asc")
    sorted_th = page.find("th", class_="sorted asc")
    assert len(sorted_th) == 2 and "column-attempts" in sorted_th[0]["class"]  # head, foot
    assert page.find("a", href="?page=formrelay&view=jobs&status=failed&orderby=attempts"
                               "&order=desc&per_page=2")  # flips the order
    assert page.find("a", href="?page=formrelay&view=jobs&status=failed&orderby=created"
                               "&order=desc&per_page=2")
    nexts = page.find("a", class_="next-page button")
    assert nexts and nexts[0]["href"] == ("?page=formrelay&view=jobs&status=failed"
                                          "&orderby=attempts&order=asc&per_page=2&paged=2")
    assert "5 items" in page.words and "1 of 3" in page.words
    last = view(admin, "jobs", status="failed", per_page=2, orderby="attempts", order="asc",
                paged=3)
    assert "3 of 3" in last.words and not last.find("a", class_="next-page button")
    assert len(last.find("input", name="job[]")) == 1
    assert last.find("input", type="hidden", name="orderby", value="attempts")


def test_the_views_take_paged_and_ignore_the_admin_pages_page(admin, store):
    for n in range(1, 4):
        make_job(store, n, "pending")
    page = view(admin, "jobs", page="formrelay", per_page=1, paged=2)
    assert "2 of 3" in page.words


# ---- one job ------------------------------------------------------------------------------

def test_the_job_view_lists_fields_by_name_with_empty_value_cells(admin, store):
    job = make_job(store, 1, "documents", documents=2, snapshot=snapshot_of(
        {"1": ("Full name", "Jane Secretvalue"), "2": ("Email", "jane@secret.example")}))
    doc = store.documents(job)[0]
    store.claim_document(doc.id, "w", 300)
    store.transition_document(doc.id, Event(EventKind.REJECTED, error="type text/html is not"
                                            " allowed"), owner="w",
                              facts={"detected_type": "text/html", "size": 5120})
    page = view(admin, "job", id=job)
    assert_native_header(page, None)
    assert "Full name" in page.words and "Email" in page.words
    assert "Secretvalue" not in page.html and "secret.example" not in page.html
    cells = page.find("td", data_field_id="*")
    assert [c["data-field-id"] for c in cells] == ["1", "2"]
    assert "data-field-id=\"1\"></td>" in page.html  # empty until revealed
    assert page.find("button", data_formrelay_reveal=str(job))
    assert "text/html" in page.words and "5.0 KiB" in page.words
    assert "type text/html is not allowed" in page.words and "Rejected" in page.words
    assert "doc0" not in page.html and "doc1" not in page.html  # names: Reveal only
    assert [c["data-document-id"] for c in page.find("td", data_document_id="*")] == [
        str(d.id) for d in store.documents(job)]
    assert f'data-document-id="{doc.id}"></td>' in page.html  # empty until revealed
    assert "rejected_file" in page.words  # the document's error category
    assert "job.created" in page.words and "job.record_sent" in page.words
    assert page.find("table", class_="formrelay-timeline")
    assert page.find("a", href=f"?page=formrelay&view=logs&job_id={job}")


@pytest.mark.parametrize("status,buttons", [
    ("failed", ["retry", "restart"]), ("cancelled", ["retry", "restart"]),
    ("pending", ["restart", "cancel"]), ("retrying", ["restart", "cancel"]),
    ("processing", ["cancel"]), ("completed", ["restart"])])
def test_action_buttons_only_when_allowed(admin, store, status, buttons):
    job = make_job(store, 1, status)
    page = view(admin, "job", id=job)
    shown = [b["data-formrelay-action"] for b in page.find("button", data_job=str(job))]
    assert shown == buttons


def test_a_missing_job_or_bad_parameter_is_a_json_error(admin):
    missing = admin.get("/view/job", id=999999)
    assert missing.status_code == 404 and missing.get_json() == {"error": "no job 999999"}
    bad = admin.get("/view/job", id="x")
    assert bad.status_code == 400 and bad.get_json()["error"].startswith("id: ")
    assert admin.get("/view/jobs", status="nope").get_json()["error"].startswith("status: ")
    assert admin.get("/view/logs", paged="0").get_json()["error"].startswith("paged: ")
    assert admin.get("/view/nothing").status_code == 404


# ---- the log viewer -----------------------------------------------------------------------

def test_the_log_viewer_filters_links_to_jobs_and_pages(admin, store):
    jobs = [make_job(store, n, "failed") for n in range(1, 4)]
    page = view(admin, "logs", per_page=2)
    assert_native_header(page, "logs")
    assert page.find("table", class_="wp-list-table widefat fixed striped")
    assert page.find("a", href=f"?page=formrelay&view=job&id={jobs[2]}")
    assert page.find("a", class_="next-page button", href="?page=formrelay&view=logs"
                                                          "&per_page=2&paged=2")
    assert page.find("select", name="level") and page.find("option", value="error")
    assert page.find("option", value="job.created")  # the events in the log
    assert page.find("input", type="hidden", name="view", value="logs")
    only = view(admin, "logs", job_id=jobs[0], level="error")
    assert only.find("option", value="error", selected="")
    assert {a["href"] for a in only.find("a") if "view=job&" in a["href"]} == {
        f"?page=formrelay&view=job&id={jobs[0]}"}


# ---- escaping -----------------------------------------------------------------------------

def test_everything_shown_is_escaped_in_every_view(admin, store):
    hostile = XSS[0] + " " + XSS[1]
    job = make_job(store, 1, "documents", documents=1, reference=f"wpforms:{hostile}",
                   snapshot=snapshot_of({"1": (hostile, hostile)}))
    doc = store.documents(job)[0]
    sql(store, "UPDATE {p}formrelay_documents SET original_name = %s, detected_type = %s"
               " WHERE id = %s", hostile, hostile, doc.id)
    store.claim_document(doc.id, "w", 300)
    store.transition_document(doc.id, Event(EventKind.PERMANENT_ERROR, error=f"partner: {hostile}"),
                              owner="w")
    store.log(LogEntry("job.note", f"partner said {hostile}", actor=hostile[:60]), job_id=job)
    sql(store, "DELETE FROM {p}formrelay_workers")
    store.heartbeat(hostile[:100], "h", 1, "0.1.0", "thread", 1)
    Pause(store, Policy()).refused(f"partner answered 401: {hostile}", auth=True)
    pages = {
        "overview": view(admin, "overview").html,
        "jobs": view(admin, "jobs", search="wpforms:" + hostile).html,
        "job": view(admin, "job", id=job).html,
        "logs": view(admin, "logs").html,
        "logs-search": view(admin, "logs", search=f"partner {XSS[0]}").html,
    }
    for name, html in pages.items():
        for raw in ("<script", "<img", '"><img', 'onerror=alert(1)>'):
            assert raw not in html, (name, raw)
    escaped = ("&lt;script&gt;alert(1)&lt;/script&gt;",
               "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;")
    for name in ("overview", "jobs", "job", "logs"):
        for text in escaped:
            assert text in pages[name], (name, text)
    assert pages["jobs"].count(escaped[0]) >= 3  # reference, last error, search box
    assert 'value="wpforms:&lt;script&gt;' in pages["jobs"]


# ---- over real HTTP -----------------------------------------------------------------------

@contextmanager
def serving(app: Any) -> Iterator[str]:
    """The sidecar's WSGI app on a free port over real HTTP (waitress); yields its URL."""
    server = create_server(app, host="127.0.0.1", port=0, threads=2)
    closing = threading.Event()

    def run() -> None:
        try:
            server.run()
        except OSError:
            if not closing.is_set():
                raise

    threading.Thread(target=run, daemon=True).start()
    url = f"http://127.0.0.1:{server.effective_port}"
    wait_until(lambda: requests.get(url + "/readyz", timeout=1).ok, 10, "the sidecar")
    try:
        yield url
    finally:
        closing.set()
        server.close()


@pytest.fixture
def http(store: Store) -> Iterator[str]:
    with serving(create_app(store, SECRET, Recorded())) as url:
        yield url


def signed_request(url: str, method: str, path_and_query: str, body: bytes = b"",
                   user: str = USER) -> requests.Response:
    ts, nonce = str(int(time.time())), secrets.token_hex(16)
    headers = {"X-FormRelay-Timestamp": ts, "X-FormRelay-Nonce": nonce, "X-FormRelay-User": user,
               "X-FormRelay-Signature": sign_admin(SECRET, ts, nonce, method, path_and_query,
                                                   user, body)}
    if method == "POST":
        headers["Content-Type"] = "application/json"
    return requests.request(method, url + path_and_query, data=body or None, headers=headers,
                            timeout=10)


def test_over_http_the_raw_path_and_query_are_what_is_signed(http, store):
    job = make_job(store, 1, "failed", reference="ref:100% a+b")
    # RFC 3986 as the plugin sends it (%20, %25, %2B): signed and checked byte for byte
    resp = signed_request(http, "GET", "/admin/v1/jobs?search=ref%3A100%25%20a%2Bb&per_page=5")
    assert resp.status_code == 200, resp.text
    assert [j["id"] for j in resp.json()["jobs"]] == [job]
    plus = signed_request(http, "GET", "/admin/v1/jobs?search=ref:100%25+a%2Bb")  # + is a space
    assert [j["id"] for j in plus.json()["jobs"]] == [job]
    html = signed_request(http, "GET", "/admin/v1/view/jobs?search=ref%3A100%25%20a%2Bb")
    assert html.status_code == 200 and html.headers["Content-Type"].startswith("text/html")
    nonce = secrets.token_hex(16)
    forged = requests.get(http + "/admin/v1/jobs?search=x", timeout=10, headers={
        "X-FormRelay-Timestamp": str(int(time.time())), "X-FormRelay-User": USER,
        "X-FormRelay-Nonce": nonce,
        "X-FormRelay-Signature": sign_admin(SECRET, str(int(time.time())), nonce, "GET",
                                            "/admin/v1/jobs?search=y", USER, b"")})
    assert forged.status_code == 401
    done = signed_request(http, "POST", f"/admin/v1/jobs/{job}/retry", b"{}")
    assert done.status_code == 200 and done.json()["job"]["status"] == "pending"
    assert sql(store, "SELECT actor FROM {p}formrelay_log WHERE job_id = %s ORDER BY id DESC"
                      " LIMIT 1", job)[0]["actor"] == USER
