"""An admin steers deliveries from wp-admin → FormRelay in a real browser.

Everything is real: Chromium, WordPress on PHP 8.2 with the bridge, the
plugin's script calling its REST routes with the nonce, the sidecar rendering
the views, its worker delivering to the simulator over HTTP.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from devstack.samples import write_pdf
from sidecar.breaker import Policy
from sidecar.pause import Pause
from sidecar.store import Database, DbSettings, Store
from tests.conftest import wait_until
from tests.wordpress.stack import Stack

pytestmark = [pytest.mark.browser, pytest.mark.wordpress, pytest.mark.db, pytest.mark.sim,
              pytest.mark.slow]

SCRIPT = "<script>alert('field')</script>"
IMG = '"><img src=x onerror=alert(1)>'
PARTNER_ERROR = f"email rejected {SCRIPT} {IMG}"


def page_url(stack: Stack, query: str = "") -> str:
    return f"{stack.wp.url}/wp-admin/admin.php?page=formrelay" + (f"&{query}" if query else "")


def failed_jobs(stack: Stack, count: int) -> list[dict[str, Any]]:
    """`count` submissions the partner refuses (422, with markup in its message)."""
    stack.sim.script({"kind": "record", "status": 422, "body": {"error": PARTNER_ERROR},
                      "count": count})
    refs = [f"wpforms:{stack.form}:{stack.submit([]).entry_id}" for _ in range(count)]
    marks = ", ".join(["%s"] * count)
    return wait_until(lambda: len(rows := stack.jobs(
        f"reference IN ({marks}) AND status = 'failed'", *refs)) == count and rows, 30,
        "the partner's refusals to fail the jobs")


def status_of(stack: Stack, job_id: int) -> str:
    return str(stack.jobs("id = %s", job_id)[0]["status"])


def test_an_admin_finds_a_failed_job_reveals_it_and_retries_it(stack, admin, shot):
    (job,) = failed_jobs(stack, 1)
    snap = json.loads(job["snapshot"])  # markup in a submitted value, as a hostile user sends
    snap["fields"]["3"]["value"] = f"{SCRIPT}{IMG}"
    with stack.wp.db() as conn:
        conn.cursor().execute(f"UPDATE {stack.wp.table_prefix}formrelay_jobs SET snapshot = %s"
                              " WHERE id = %s", (json.dumps(snap), job["id"]))
        conn.commit()

    admin.goto(page_url(stack))
    admin.wait_for_selector("[data-formrelay-refresh='overview']")
    assert "sidecar unreachable" not in admin.content()
    shot("1-overview")

    admin.click("a.nav-tab:has-text('Jobs')")
    admin.click("ul.subsubsub li.failed a")
    admin.wait_for_url("**status=failed**")
    admin.fill("#formrelay-search-input", job["reference"])
    admin.press("#formrelay-search-input", "Enter")
    admin.wait_for_url("**search=**")
    rows = admin.locator("tr.formrelay-job")
    assert rows.count() == 1 and job["reference"] in rows.first.inner_text()
    assert PARTNER_ERROR in rows.first.locator("td.column-last-error").inner_text()  # as text
    shot("2-jobs-search")

    rows.first.locator("a.row-title").click()
    admin.wait_for_url(f"**view=job**id={job['id']}**")
    assert PARTNER_ERROR in admin.locator("td.formrelay-last-error").inner_text()
    cell = admin.locator("td[data-field-id='3']")
    assert cell.inner_text() == ""  # values stay hidden until asked for
    admin.click(f"[data-formrelay-reveal='{job['id']}']")
    wait_until(lambda: cell.inner_text() != "", 15, "the revealed value")
    assert cell.inner_text() == f"{SCRIPT}{IMG}"  # shown as text: nothing ran
    assert admin.locator("td[data-field-id='3'] img, td[data-field-id='3'] script").count() == 0
    shot("3-job-revealed")

    admin.click(f"[data-formrelay-action='retry'][data-job='{job['id']}']")
    wait_until(lambda: status_of(stack, job["id"]) == "completed", 30, "the retried job")
    admin.reload()
    assert admin.locator(".formrelay-reference .formrelay-status").inner_text() == "Completed"
    timeline = admin.locator("table.formrelay-timeline").inner_text()
    assert stack.wp.admin_user in timeline  # the retry names who did it
    shot("4-job-completed")


def test_a_documents_name_is_hidden_until_revealed_even_when_the_partner_echoes_it(
        stack, admin, shot, tmp_path):
    name = "Jane_Doe_HIV_result.pdf"
    stack.sim.script({"kind": "document", "status": 422, "echo": True})
    entry = stack.submit([write_pdf(tmp_path / name, 3000)]).entry_id
    reference = f"wpforms:{stack.form}:{entry}"
    (job,) = wait_until(lambda: stack.jobs("reference = %s AND status = 'failed'", reference),
                        30, "the refused document to fail the job")
    admin.goto(page_url(stack, f"view=job&id={job['id']}"))
    cell = admin.locator("td[data-document-id]")
    cell.wait_for()
    assert cell.inner_text() == ""
    page = admin.locator("#formrelay-view").inner_text()
    assert "Jane" not in page and "HIV" not in page and "[redacted]" in page
    assert "validation" in admin.locator("td.formrelay-last-error").inner_text()
    admin.click(f"[data-formrelay-reveal='{job['id']}']")
    wait_until(lambda: cell.inner_text() != "", 15, "the revealed file name")
    assert cell.inner_text() == name
    shot("1-document-name-revealed")


def test_an_admin_bulk_retries_two_failed_jobs(stack, admin, shot):
    jobs = failed_jobs(stack, 2)
    admin.goto(page_url(stack, "view=jobs&status=failed"))
    for job in jobs:
        admin.check(f"input[name='job[]'][value='{job['id']}']")
    shot("1-selected")
    admin.click("form[data-formrelay-bulk] button[type='submit']")
    wait_until(lambda: all(status_of(stack, j["id"]) == "completed" for j in jobs), 30,
               "both retried jobs delivered")
    admin.goto(page_url(stack, "view=jobs&status=completed"))
    listed = admin.locator("tbody#the-list").inner_text()
    assert all(j["reference"] in listed for j in jobs)
    shot("2-completed")


def test_an_admin_retries_every_failed_job_matching_the_filter(stack, admin, shot):
    jobs = failed_jobs(stack, 2)
    admin.goto(page_url(stack, f"view=jobs&status=failed&form_id={jobs[0]['form_id']}"))
    admin.click("[data-formrelay-bulk-all]")
    wait_until(lambda: all(status_of(stack, j["id"]) == "completed" for j in jobs), 30,
               "every failed job of the form delivered")
    shot("1-done")


def test_an_admin_filters_the_log_and_follows_a_row_to_its_job(stack, admin, shot):
    (job,) = failed_jobs(stack, 1)
    admin.goto(page_url(stack, "view=logs"))
    admin.select_option("#formrelay-log-level", "error")
    admin.fill("#formrelay-log-search", "rejected")
    admin.press("#formrelay-log-search", "Enter")
    admin.wait_for_url("**level=error**")
    rows = admin.locator("table.formrelay-log-table tbody tr")
    levels = rows.locator("td:nth-child(2)").all_inner_texts()
    assert levels and set(levels) == {"error"}
    assert all("rejected" in m for m in rows.locator("td:nth-child(5)").all_inner_texts())
    shot("1-log-errors")
    admin.locator(f"table.formrelay-log-table a[href$='view=job&id={job['id']}']").first.click()
    admin.wait_for_url(f"**view=job**id={job['id']}**")
    assert admin.locator("h1").inner_text() == f"Job #{job['id']}"
    shot("2-job")


def site_store(stack: Stack) -> Store:
    wp = stack.wp
    return Store(Database(DbSettings.parse(wp.db_host_port, wp.db_user, wp.db_password,
                                           wp.db_name)), wp.table_prefix)


def test_the_overview_refreshes_itself_and_resumes_a_paused_delivery(stack, admin, shot):
    store = site_store(stack)
    Pause(store, Policy()).refused("HTTP 503: partner down for maintenance", auth=False)
    admin.goto(page_url(stack))
    pause = admin.locator(".formrelay-pause")
    assert "Delivery is paused" in pause.inner_text()
    assert "partner down for maintenance" in pause.inner_text()
    failed = admin.locator("td.formrelay-count-failed")
    before = int(failed.inner_text())
    shot("1-paused")

    Pause(store, Policy()).resume("test")  # the partner is back; deliver a refused one
    failed_jobs(stack, 1)  # a new failure shows up without reloading the page
    wait_until(lambda: int(failed.inner_text()) == before + 1, 20, "the overview to refresh")
    Pause(store, Policy()).refused("HTTP 503: down again", auth=False)
    wait_until(lambda: "down again" in pause.inner_text(), 20, "the pause to show")
    admin.click("[data-formrelay-action='resume']")
    wait_until(lambda: "Delivery is running" in pause.inner_text(), 20, "the resume")
    assert not Pause(store, Policy()).state().paused
    with stack.wp.db() as conn:
        cur = conn.cursor()
        cur.execute(f"SELECT actor FROM {stack.wp.table_prefix}formrelay_log"
                    " WHERE event = 'delivery.resumed' ORDER BY id DESC LIMIT 1")
        assert cur.fetchone()[0] == stack.wp.admin_user
    shot("2-resumed")
    store.db.close()


def test_restart_asks_first_and_sends_the_job_again_with_a_new_key(stack, admin, shot):
    (job,) = failed_jobs(stack, 1)
    admin.goto(page_url(stack, f"view=job&id={job['id']}"))
    admin.click(f"[data-formrelay-action='restart'][data-job='{job['id']}']")
    wait_until(lambda: status_of(stack, job["id"]) == "completed", 30, "the restarted job")
    assert any(d.startswith("confirm") for d in admin.dialogs)
    assert stack.jobs("id = %s", job["id"])[0]["key_generation"] == 2
    keys = {r["idempotency_key"] for r in stack.sim.records()}
    assert f"{job['reference']}:2" in keys
    admin.reload()
    shot("1-restarted")


def test_an_admin_filters_the_jobs_by_partner(stack, admin, shot):
    """The Partner column and the partner select (the partners `formrelay run` published:
    here the one partner of the flat settings, "default"), through the plugin's relay."""
    jobs = failed_jobs(stack, 2)
    elsewhere = jobs[1]
    with stack.wp.db() as conn:  # a job of a partner this sidecar no longer has
        conn.cursor().execute(f"UPDATE {stack.wp.table_prefix}formrelay_jobs SET partner ="
                              " 'old-lab' WHERE id = %s", (elsewhere["id"],))
        conn.commit()
    admin.goto(page_url(stack, "view=jobs&status=failed"))
    cell = admin.locator(f"tr:has(input[name='job[]'][value='{jobs[0]['id']}'])"
                         " td.column-partner")
    assert cell.inner_text().strip() == "default"
    admin.select_option("select#formrelay-filter-partner", "default")
    admin.click("form.formrelay-jobs-filter input[type='submit'][value='Filter']")
    admin.wait_for_url("**partner=default**")
    boxes = admin.locator("input[name='job[]']")
    shown = {int(boxes.nth(i).get_attribute("value")) for i in range(boxes.count())}
    assert jobs[0]["id"] in shown and elsewhere["id"] not in shown
    shot("1-default")
    admin.goto(page_url(stack, "view=jobs&status=failed&partner=old-lab"))
    assert admin.locator("select#formrelay-filter-partner option:checked").inner_text() == \
        "old-lab (not configured)"
    listed = admin.locator("tbody#the-list").inner_text()
    assert elsewhere["reference"] in listed and jobs[0]["reference"] not in listed
    shot("2-old-lab")
