"""The checked descriptor kept for the upload: hard links refused, the reader that hashes as it
streams and refuses to finish a file that is not the checked one, and its lifetime."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from requests_toolbelt import MultipartEncoder

from devstack.samples import write_pdf
from sidecar.errors import RejectedFile
from sidecar.file_checks import FileChanged, FilePolicy, check_file, open_checked
from tests.file_edits import CHANGES, rewrite_in_place

pytestmark = pytest.mark.unit

POLICY = FilePolicy()
SIZE = 300_000


@pytest.fixture
def uploads(tmp_path: Path) -> Path:
    (tmp_path / "uploads" / "wpforms").mkdir(parents=True)
    return tmp_path / "uploads"


@pytest.fixture
def pdf(uploads: Path) -> Path:
    return write_pdf(uploads / "wpforms" / "scan.pdf", SIZE)


def open_on(path: Path) -> int:
    """How many of this process's descriptors are open on `path` (fd numbers get reused)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}") == str(path)
        except OSError:
            continue
    return count


def read_all(reader, size: int = 16384) -> bytes:
    out = bytearray()
    while chunk := reader.read(size):
        out += chunk
    return bytes(out)


@pytest.mark.parametrize("links", [2, 3])
def test_a_hard_linked_file_is_refused_saying_why(uploads, tmp_path, links):
    outside = write_pdf(tmp_path / "outside.pdf", 4096)
    inside = uploads / "wpforms" / "innocent.pdf"
    os.link(outside, inside)
    if links == 3:
        os.link(outside, tmp_path / "third.pdf")
    with pytest.raises(RejectedFile) as caught:
        check_file(inside, uploads, POLICY)
    assert str(caught.value) == (f"file has {links} hard links; a hard-linked file may be a file"
                                 " outside uploads")


def test_the_reader_gives_the_checked_bytes_in_bounded_chunks_from_byte_0(pdf, uploads):
    data = pdf.read_bytes()
    with open_checked(pdf, uploads, POLICY) as opened:
        assert opened.checked.sha256 == hashlib.sha256(data).hexdigest()
        reader = opened.reader()
        assert len(reader) == SIZE
        first = reader.read(-1)
        assert 0 < len(first) <= 256 * 1024  # never the whole file at once
        assert len(reader) == SIZE - len(first)
        assert first + read_all(reader) == data and len(reader) == 0
        assert read_all(opened.reader(), 4096) == data  # a retry starts again at byte 0


def test_the_multipart_encoder_streams_the_reader_whole(pdf, uploads):
    with open_checked(pdf, uploads, POLICY) as opened:
        encoder = MultipartEncoder(fields={"file": ("a.pdf", opened.reader(), "application/pdf")})
        body = read_all(encoder, 8192)
    assert len(body) == encoder.len and pdf.read_bytes() in body


@pytest.mark.parametrize("change", CHANGES)
def test_a_change_after_the_check_is_refused_before_the_last_chunk(pdf, uploads, change):
    with open_checked(pdf, uploads, POLICY) as opened:
        rewrite_in_place(pdf, change)
        reader = opened.reader()
        given = 0
        with pytest.raises(FileChanged) as caught:
            while chunk := reader.read(65536):
                given += len(chunk)
        assert given < SIZE  # the end of the file was never handed out
        assert str(caught.value) == "file changed between check and upload"
        assert isinstance(caught.value, RejectedFile)


def test_the_descriptor_is_closed_on_exit_and_on_a_rejection(pdf, uploads):
    before = open_on(pdf)
    with open_checked(pdf, uploads, POLICY) as opened:
        assert open_on(pdf) == before + 1
    assert open_on(pdf) == before
    opened.close()  # twice is fine
    with pytest.raises(ValueError):
        opened.reader()
    with pytest.raises(RejectedFile):
        open_checked(pdf, uploads, FilePolicy(max_bytes=SIZE - 1))
    assert open_on(pdf) == before


def test_a_rewound_reader_reads_the_same_file_again_and_still_checks_it(uploads, pdf):
    with open_checked(pdf, uploads, POLICY) as opened:
        reader = opened.reader()
        first = reader.read(1000)
        reader.rewind()  # a 401 halfway: the request is sent again from byte 0
        assert len(reader) == SIZE
        assert read_all(reader) == pdf.read_bytes() and first == pdf.read_bytes()[:1000]
        reader.rewind()
        reader.read(1000)
        with pdf.open("ab") as grown:
            grown.write(b"x")
        with pytest.raises(FileChanged):
            read_all(reader)
