"""What is uploaded is what was checked: the file swapped or rewritten while the step waits for
its partner slot, and hard links, against real MariaDB and the partner simulator over HTTP.

The swap happens inside the throttle's slot, the exact window between the check and the
upload, so no timing is involved.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from devstack.samples import write_pdf
from sidecar.errors import PartnerConfigError
from sidecar.states import Status
from sidecar.throttle import Throttle
from tests.file_edits import CHANGES, rewrite_in_place
from tests.integration.delivery import Delivery, snapshot, text_fields

pytestmark = [pytest.mark.db, pytest.mark.sim]

SIZE = 600_000  # several read chunks: the change is found only at the end of the stream
CHANGED = "file changed between check and upload"


class ActOnDocumentSlot(Throttle):
    """Grants every slot but maybe the `nth` (the document step's), running `action` in it."""

    def __init__(self, action: Callable[[], None], nth: int = 2, granted: bool = True) -> None:
        self.action, self.nth, self.granted, self.calls = action, nth, granted, 0

    @contextmanager
    def slot(self) -> Iterator[bool]:
        self.calls += 1
        if self.calls != self.nth:
            yield True
            return
        self.action()
        yield self.granted


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fds_open_on(path: Path) -> list[str]:
    """This process's descriptors open on `path` (also once it is unlinked: "(deleted)")."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed meanwhile (the listing's own fd)
            continue
        if target == str(path) or target == f"{path} (deleted)":
            found.append(target)
    return found


def enqueue(delivery: Delivery, uploads: Path, doc: Path, n: int) -> int:
    return delivery.enqueue(f"wpforms:12:{n}", snapshot(12, n, text_fields(), uploads, [doc]), n)


def uploaded_hashes(sim) -> list[str]:
    return [d["sha256"] for r in sim.records() for d in r["documents"]]


def test_a_symlink_swapped_in_after_the_check_sends_only_the_checked_bytes(
        delivery, sim, uploads, tmp_path):
    original = write_pdf(uploads / "wpforms" / "12-abc" / "scan.pdf", SIZE)
    checked_bytes = original.read_bytes()
    secret = write_pdf(tmp_path / "outside-secret.pdf", SIZE + 1000)
    held: list[list[str]] = []

    def swap() -> None:  # rename a symlink over the checked file, as an attacker would
        held.append(fds_open_on(original))
        link = original.with_name("swap.tmp")
        link.symlink_to(secret)
        os.replace(link, original)

    delivery.engine.throttle = ActOnDocumentSlot(swap)
    job_id = enqueue(delivery, uploads, original, 61)
    delivery.drain()
    assert original.is_symlink()
    assert sha(secret.read_bytes()) not in uploaded_hashes(sim)
    assert held == [[str(original)]]  # the checked descriptor is held across the slot wait
    assert uploaded_hashes(sim) == [sha(checked_bytes)]  # the file checked, from its descriptor
    (doc,) = delivery.store.documents(job_id)
    assert doc.status == Status.UPLOADED and doc.sha256 == sha(checked_bytes)
    assert doc.size == SIZE
    assert fds_open_on(original) == []  # closed after the upload


@pytest.mark.parametrize("change", CHANGES)
def test_a_file_rewritten_in_place_after_the_check_is_not_uploaded(
        delivery, sim, uploads, change):
    original = write_pdf(uploads / "wpforms" / "12-abc" / "scan.pdf", SIZE)
    delivery.engine.throttle = ActOnDocumentSlot(lambda: rewrite_in_place(original, change))
    job_id = enqueue(delivery, uploads, original, 62)
    delivery.drain()
    (doc,) = delivery.store.documents(job_id)
    assert (doc.status, doc.last_error, doc.partner_document_id) == (Status.REJECTED, CHANGED,
                                                                     None)
    assert delivery.store.get_job(job_id).status == Status.FAILED
    assert f"document 1 rejected: {CHANGED}" in delivery.store.get_job(job_id).last_error
    assert sim.stats()["documents_created"] == 0  # the body was cut before its end
    assert uploaded_hashes(sim) == []
    assert fds_open_on(original) == []


def test_a_hard_link_to_a_file_outside_uploads_is_refused(delivery, sim, uploads, tmp_path):
    outside = write_pdf(tmp_path / "outside.pdf", 4096)
    link = uploads / "wpforms" / "12-abc" / "innocent.pdf"
    os.link(outside, link)
    job_id = enqueue(delivery, uploads, link, 63)
    delivery.drain()
    (doc,) = delivery.store.documents(job_id)
    assert doc.status == Status.REJECTED
    assert doc.last_error == ("file has 2 hard links; a hard-linked file may be a file outside"
                              " uploads")
    assert sim.stats()["documents_created"] == 0


def test_the_checked_descriptor_is_closed_on_every_path(delivery, sim, uploads):
    """Uploaded, refused by the partner (retry), paused by a 401 (raised), slot not granted."""
    folder = uploads / "wpforms" / "12-abc"
    paths = [write_pdf(folder / f"doc{i}.pdf", 4096) for i in range(4)]
    sim.script({"kind": "document", "status": 503})
    for n, path in enumerate(paths[:2], 70):  # the first one's upload gets the 503
        job_id = enqueue(delivery, uploads, path, n)
        delivery.drain()
    assert [d.status for d in delivery.store.documents(job_id)] == [Status.UPLOADED]
    sim.script({"kind": "document", "status": 401})
    enqueue(delivery, uploads, paths[2], 72)
    with pytest.raises(PartnerConfigError):
        delivery.drain()
    delivery.engine.throttle = ActOnDocumentSlot(lambda: None, granted=False)
    delivery.doorbell.rings.clear()
    enqueue(delivery, uploads, paths[3], 73)
    delivery.drain(max_steps=2)
    assert delivery.engine.throttle.calls == 2
    assert [fds_open_on(p) for p in paths] == [[], [], [], []]
