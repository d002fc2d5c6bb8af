"""The partner client's limits against a misbehaving partner over real sockets: a total
deadline per request (a byte-a-second answer, an upload read at a crawl) and a cap on the
answer it reads (never loaded whole)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sidecar.errors import Category, PermanentError, RetryableError
from sidecar.partner_client import MAX_RESPONSE_BYTES, PartnerClient, PartnerSettings
from sidecar.partner_profile import DocumentUpload, RecordRequest
from tests.integration.hostile_partner import (
    Behaviour,
    BigAnswer,
    HostilePartner,
    slow_reader,
    trickle,
)

pytestmark = pytest.mark.sim

MIB = 1024 * 1024

RECORD = RecordRequest({"a": 1}, "wpforms:1:1", 1)


def upload(body: Body) -> DocumentUpload:
    return DocumentUpload(body, "a.pdf", "application/pdf", len(body))



class Body:
    """An in-memory upload body, read as the multipart encoder reads a file."""

    def __init__(self, data: bytes) -> None:
        self.data, self.offset = data, 0

    def __len__(self) -> int:
        return len(self.data) - self.offset

    def read(self, size: int | None = -1) -> bytes:
        size = len(self) if size is None or size < 0 else size
        chunk = self.data[self.offset:self.offset + size]
        self.offset += len(chunk)
        return chunk


@pytest.fixture
def partner() -> Iterator[list[HostilePartner]]:
    started: list[HostilePartner] = []
    yield started
    for server in started:
        server.close()


def client_for(partner: list[HostilePartner], behave: Behaviour, deadline: float = 120.0,
               rcvbuf: int | None = None) -> PartnerClient:
    server = HostilePartner(behave, rcvbuf)
    partner.append(server)
    return PartnerClient(PartnerSettings(server.url, connect_timeout=2, read_timeout=5,
                                         deadline=deadline))


def test_an_answer_trickled_a_byte_at_a_time_ends_at_the_deadline(partner):
    body = b'{"id": "P-1", "pad": "' + b"x" * 200 + b'"}'
    client = client_for(partner, trickle(body, every=0.1), deadline=1.0)
    with pytest.raises(RetryableError) as caught:
        client.create_record(RECORD, "key-1")
    assert caught.value.category is Category.TIMEOUT
    assert str(caught.value) == "the partner took longer than the 1 s deadline"


def test_an_upload_the_partner_reads_at_a_crawl_ends_at_the_deadline(partner):
    client = client_for(partner, slow_reader(4096, every=0.05, give_up=15), deadline=1.0,
                        rcvbuf=16384)
    with pytest.raises(RetryableError) as caught:
        client.upload_document("P-1", upload(Body(b"%PDF" + b"0" * 8 * MIB)), "key-2")
    assert caught.value.category is Category.TIMEOUT


def test_a_well_behaved_partner_is_unaffected_by_the_deadline(partner):
    client = client_for(partner, slow_reader(65536, every=0, give_up=30), deadline=30)
    accepted = client.upload_document("P-1", upload(Body(b"%PDF" + b"0" * MIB)), "key-3")
    assert accepted.id == "D-1"


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_a_2xx_answer_over_1_mib_is_a_retryable_bad_response_not_read_whole(partner, declared):
    answer = BigAnswer(64 * MIB, declared=declared)
    client = client_for(partner, answer)
    with pytest.raises(RetryableError) as caught:
        client.create_record(RECORD, "key-4")
    assert caught.value.category is Category.BAD_RESPONSE
    assert str(caught.value) == "HTTP 200 bad_response: the answer is over 1024 KiB"
    client.close()
    partner[0].close()
    assert answer.sent < 32 * MIB  # the client hung up; it did not take the 64 MiB


def test_an_answer_of_exactly_1_mib_is_read(partner):
    client = client_for(partner, BigAnswer(MAX_RESPONSE_BYTES))
    assert client.create_record(RECORD, "key-5").id == "P-1"


def test_a_refusal_over_1_mib_keeps_its_status_without_the_text(partner):
    client = client_for(partner, BigAnswer(4 * MIB, status=422, declared=False))
    with pytest.raises(PermanentError) as caught:
        client.create_record(RECORD, "key-6")
    assert caught.value.status == 422 and caught.value.partner_text == ""
