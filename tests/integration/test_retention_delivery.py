"""Retention meets delivery, against real MariaDB and the partner simulator over HTTP:
a job retried after its values were dropped, and FORMRELAY_DELETE_DELIVERED_FILES
removing delivered files from a real uploads directory (and not removing them when it
must not: off, a read-only mount, a protected directory, a file swapped after upload)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.samples import write_pdf
from sidecar.retention import Retention
from sidecar.states import Event, EventKind, Status
from sidecar.sweep import clean
from tests.conftest import PREFIX
from tests.integration.delivery import (
    Delivery,
    build_delivery,
    modern_file_field,
    snapshot,
    text_fields,
)
from tests.integration.test_backfill import add_entry

pytestmark = [pytest.mark.db, pytest.mark.sim]
RETENTION = Retention(keep_snapshot_days=7, keep_completed_days=30, keep_failed_days=30)
K = EventKind


def sql(store: Any, query: str, *args: object) -> list[dict[str, Any]]:
    with store.db.transaction() as cur:
        cur.execute(query.replace("{p}", PREFIX), args)
        return list(cur.fetchall()) if cur.with_rows else []


def pdfs(folder: Path, *names: str) -> list[Path]:
    return [write_pdf(folder / "wpforms" / "12-abc" / name, 4096) for name in names]


def fail_then_drop_values(delivery: Delivery, job_id: int) -> None:
    """The job failed; 31 days pass; the cleaner drops its values."""
    assert delivery.store.get_job(job_id).status == Status.FAILED
    sql(delivery.store, "UPDATE {p}formrelay_jobs SET updated_at = updated_at - INTERVAL 31 DAY"
                        " WHERE id = %s", job_id)
    assert clean(delivery.store, RETENTION).failed_dropped == 1


def retry(delivery: Delivery, job_id: int) -> None:
    delivery.store.transition_job(job_id, Event(K.RETRY))
    delivery.doorbell.ring_record(job_id, 10)
    for doc in delivery.store.documents(job_id):
        delivery.doorbell.ring_document(doc.id, 10)
    delivery.drain()


def dropped_on(delivery: Delivery, job_id: int) -> str:
    return sql(delivery.store, "SELECT DATE(values_dropped_at) AS d FROM {p}formrelay_jobs"
                               " WHERE id = %s", job_id)[0]["d"].isoformat()


# ---- a job retried after its values were dropped ----------------------------------------

@pytest.mark.parametrize("site", ["no entry", "WPForms Lite"])
def test_a_retried_job_without_values_or_entry_fails_saying_retention_deleted_them(
        delivery, sim, uploads, request, site):
    if site == "no entry":
        request.getfixturevalue("wpforms_tables")  # the tables, but not this entry
    sim.script({"kind": "record", "status": 422})
    job_id = delivery.enqueue("wpforms:12:41", snapshot(12, 41, text_fields(), uploads, []), 41)
    delivery.drain()
    fail_then_drop_values(delivery, job_id)
    retry(delivery, job_id)
    job = delivery.store.get_job(job_id)
    assert job.status == Status.FAILED
    gone = f"the submitted values were deleted by retention on {dropped_on(delivery, job_id)}"
    assert job.last_error.startswith(gone + ", and "), job.last_error
    assert job.last_error.endswith("WPForms entry 41 does not exist" if site == "no entry"
                                   else "(WPForms Lite stores no entries)"), job.last_error
    assert sim.stats()["records_created"] == 0


def test_a_retried_job_without_values_is_delivered_from_its_wpforms_entry(
        delivery, sim, uploads, wpforms_tables):
    add_entry(delivery.store, 42, 12)
    sim.script({"kind": "record", "status": 422})
    job_id = delivery.enqueue("wpforms:12:42", snapshot(12, 42, text_fields(), uploads, []), 42)
    delivery.drain()
    fail_then_drop_values(delivery, job_id)
    retry(delivery, job_id)
    assert delivery.store.get_job(job_id).status == Status.COMPLETED
    (record,) = sim.records(bodies=True)
    assert record["body"]["fields"]["Email"] == "jane@example.com"
    (sent,) = [r for r in delivery.store.job_log(job_id) if r["event"] == "record.sent"]
    assert (f"from WPForms entry 42 (the submitted values were deleted by retention on"
            f" {dropped_on(delivery, job_id)})") in sent["message"]


def test_names_read_anew_from_the_entry_are_dropped_again_when_the_job_fails_again(
        delivery, sim, uploads, wpforms_tables):
    (doc_file,) = pdfs(uploads, "Jane_Doe_scan.pdf")
    url = f"https://site.test/wp-content/uploads/{doc_file.relative_to(uploads)}"
    fields = {**text_fields(), "4": modern_file_field(4, ["Jane_Doe_scan.pdf"], [url])}
    sql(delivery.store, "INSERT INTO {p}wpforms_entries (entry_id, form_id, post_id, user_id,"
                        " status, type, fields, meta, date, date_modified, ip_address,"
                        " user_agent, user_uuid) VALUES (44, 12, 0, 0, '', '', %s, '',"
                        " UTC_TIMESTAMP(), UTC_TIMESTAMP(), '', '', '')", json.dumps(fields))
    sim.script({"kind": "record", "status": 422})
    job_id = delivery.enqueue("wpforms:12:44", snapshot(12, 44, text_fields(), uploads,
                                                        [doc_file]), 44)
    delivery.drain()
    fail_then_drop_values(delivery, job_id)  # failed in the record step: no documents yet
    sim.script({"kind": "document", "status": 422})
    retry(delivery, job_id)  # the record goes from the entry; its document is refused
    (doc,) = delivery.store.documents(job_id)
    assert (doc.status, doc.original_name) == (Status.FAILED, "Jane_Doe_scan.pdf")
    assert delivery.store.get_job(job_id).values_dropped_at is None  # it holds a name again
    fail_then_drop_values(delivery, job_id)
    (doc,) = delivery.store.documents(job_id)
    assert doc.original_name == ""


def test_a_document_retried_after_its_name_was_blanked_is_still_delivered(
        delivery, sim, uploads):
    (doc_file,) = pdfs(uploads, "Jane_Doe_scan.pdf")
    sim.script({"kind": "document", "status": 422})
    job_id = delivery.enqueue("wpforms:12:43", snapshot(12, 43, text_fields(), uploads,
                                                        [doc_file]), 43)
    delivery.drain()
    fail_then_drop_values(delivery, job_id)
    (doc,) = delivery.store.documents(job_id)
    assert (doc.status, doc.original_name) == (Status.FAILED, "")
    retry(delivery, job_id)
    (doc,) = delivery.store.documents(job_id)
    assert doc.status == Status.UPLOADED, doc.last_error  # not rejected for a missing name
    assert delivery.store.get_job(job_id).status == Status.COMPLETED
    (record,) = sim.records(bodies=True)
    assert [d["name"] for d in record["documents"]] == ["Jane_Doe_scan.pdf"]  # the stored file


# ---- FORMRELAY_DELETE_DELIVERED_FILES ---------------------------------------------------

def removing(delivery: Delivery, uploads_dir: Path | None = None) -> Delivery:
    """The delivery with file removal on (and, if given, another view of uploads)."""
    settings = dataclasses.replace(delivery.engine.settings, delete_delivered_files=True,
                                   uploads_dir=uploads_dir or delivery.engine.settings.uploads_dir)
    delivery.engine.settings = settings
    return delivery


def deliver(delivery: Delivery, uploads_view: Path, files: list[Path], n: int) -> int:
    job_id = delivery.enqueue(f"wpforms:12:{n}", snapshot(12, n, text_fields(), uploads_view,
                                                          files), n)
    delivery.drain()
    assert delivery.store.get_job(job_id).status == Status.COMPLETED
    assert all(d.status == Status.UPLOADED for d in delivery.store.documents(job_id))
    return job_id


def file_rows(delivery: Delivery, job_id: int) -> list[tuple[str, str, str, int | None]]:
    return [(r["event"], r["level"], r["message"], r["document_id"])
            for r in delivery.store.job_log(job_id) if r["event"].startswith("document.file_")]


def removed_at(delivery: Delivery, job_id: int) -> list[bool]:
    return [bool(r["file_removed_at"]) for r in sql(
        delivery.store, "SELECT file_removed_at FROM {p}formrelay_documents WHERE job_id = %s"
                        " ORDER BY id", job_id)]


def test_delivered_files_are_removed_when_the_option_is_on(delivery, sim, uploads):
    files = pdfs(uploads, "Jane_Doe_referral.pdf", "Jane_Doe_scan.pdf")
    job_id = deliver(removing(delivery), uploads, files, 50)
    assert [f.exists() for f in files] == [False, False]
    assert files[0].parent.is_dir()  # only the files go
    (record,) = sim.records(bodies=True)
    assert len(record["documents"]) == 2  # the partner has them
    docs = delivery.store.documents(job_id)
    assert file_rows(delivery, job_id) == [
        ("document.file_removed", "info", "file removed from uploads after delivery (4096 bytes)",
         d.id) for d in docs]
    assert removed_at(delivery, job_id) == [True, True]
    everything = " ".join(r["message"] for r in delivery.store.job_log(job_id))
    assert "Jane_Doe" not in everything and str(uploads) not in everything


def test_delivered_files_stay_when_the_option_is_off(delivery, sim, uploads):
    files = pdfs(uploads, "kept.pdf")
    job_id = deliver(delivery, uploads, files, 51)
    assert files[0].exists()
    assert file_rows(delivery, job_id) == [] and removed_at(delivery, job_id) == [False]


@pytest.fixture
def readonly_view(uploads: Path, tmp_path: Path) -> Iterator[Path]:
    """The uploads directory bind-mounted read-only elsewhere, as compose mounts it into the
    sidecar (`uploads:/uploads:ro`): writes there fail with EROFS, even for root."""
    view = tmp_path / "ro-uploads"
    view.mkdir()
    made = subprocess.run(["mount", "--bind", str(uploads), str(view)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {made.stderr.decode().strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(view)], check=True)
        yield view.resolve()
    finally:
        subprocess.run(["umount", str(view)], check=True)


def test_a_read_only_uploads_mount_keeps_the_file_and_says_why(delivery, sim, uploads,
                                                               readonly_view):
    (original,) = pdfs(uploads, "ro.pdf")
    seen = readonly_view / original.relative_to(uploads)
    job_id = deliver(removing(delivery, readonly_view), readonly_view, [seen], 52)
    assert seen.exists() and original.exists()
    ((event, level, message, _),) = file_rows(delivery, job_id)
    assert (event, level) == ("document.file_not_removed", "warning")
    assert message == ("file left in uploads after delivery: the uploads directory is mounted"
                       " read-only in the sidecar")
    assert removed_at(delivery, job_id) == [False]


@pytest.fixture
def protected_file(uploads: Path) -> Iterator[Path]:
    """A document in a folder made immutable (chattr +i): unlinking in it fails with EPERM,
    for root too."""
    (original,) = pdfs(uploads, "protected.pdf")
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(original.parent)],
                                        capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available on this filesystem")
    try:
        yield original
    finally:
        subprocess.run([chattr, "-i", str(original.parent)], check=True)


def test_a_protected_folder_keeps_the_file_and_says_why(delivery, sim, uploads,
                                                        protected_file):
    job_id = deliver(removing(delivery), uploads, [protected_file], 53)
    assert protected_file.exists()
    ((event, level, message, _),) = file_rows(delivery, job_id)
    assert (event, level) == ("document.file_not_removed", "warning")
    assert message == ("file left in uploads after delivery: permission denied (the file or"
                       " its directory is protected)")
    assert removed_at(delivery, job_id) == [False]


def test_a_file_swapped_after_upload_is_not_removed(delivery, sim, uploads, tmp_path):
    (original,) = pdfs(uploads, "swapped.pdf")
    removing(delivery)
    upload = delivery.engine.client.upload_document

    def upload_then_swap(*args: Any, **kwargs: Any) -> Any:
        accepted = upload(*args, **kwargs)
        replacement = write_pdf(tmp_path / "replacement.pdf", 8192)
        os.replace(replacement, original)  # same name, another inode, after the check
        return accepted

    delivery.engine.client.upload_document = upload_then_swap  # type: ignore[method-assign]
    job_id = deliver(delivery, uploads, [original], 54)
    assert original.exists() and original.stat().st_size == 8192  # the new file is left alone
    ((event, level, message, _),) = file_rows(delivery, job_id)
    assert (event, level) == ("document.file_not_removed", "warning")
    assert message == ("file left in uploads after delivery: the file was replaced since it was"
                       " checked (another inode); it was left in place")
    assert removed_at(delivery, job_id) == [False]


def test_file_removal_needs_a_completed_upload(uploads, store, sim):
    """A document the partner refused keeps its file (only uploaded documents are removed)."""
    delivery = removing(build_delivery(store, sim.url, uploads, read_timeout=1.0))
    (original,) = pdfs(uploads, "refused.pdf")
    sim.script({"kind": "document", "status": 422})
    job_id = delivery.enqueue("wpforms:12:55", snapshot(12, 55, text_fields(), uploads,
                                                        [original]), 55)
    delivery.drain()
    assert delivery.store.documents(job_id)[0].status == Status.FAILED
    assert original.exists() and file_rows(delivery, job_id) == []
