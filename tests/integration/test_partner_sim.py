"""The partner simulator over real HTTP: API, idempotency, faults, control, CLI, memory."""

from __future__ import annotations

import email.utils
import hashlib
import os
import re
import select
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from sidecar.partner_sim import run_in_thread
from tests.conftest import wait_until

pytest_plugins = ["tests.partner_sim_fixture"]
pytestmark = pytest.mark.sim

PERSON = {"first_name": "Jane", "email": "jane@example.com", "dob": "1980-02-03"}


def post_record(sim, body: Any = None, key: str | None = "rec-1", timeout: float = 5.0,
                **headers: str) -> requests.Response:
    if key is not None:
        headers["Idempotency-Key"] = key
    return requests.post(f"{sim.url}/patients", json=PERSON if body is None else body,
                         headers=headers, timeout=timeout)


def post_document(sim, patient: str, data: bytes, key: str | None = "doc-1",
                  name: str = "scan.pdf", timeout: float = 5.0) -> requests.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return requests.post(f"{sim.url}/patients/{patient}/documents", headers=headers,
                         files={"file": (name, data, "application/pdf")},
                         data={"type": "id-card"}, timeout=timeout)


# the API -------------------------------------------------------------------------------


def test_a_record_gets_an_id_and_the_simulator_keeps_it(partner_sim):
    first = post_record(partner_sim)
    second = post_record(partner_sim, {"first_name": "Sam"}, key="rec-2")
    assert (first.status_code, second.status_code) == (201, 201)
    assert (first.json()["id"], second.json()["id"]) == ("P-000001", "P-000002")
    records = partner_sim.records()
    assert [(r["id"], r["idempotency_key"], r["field_count"]) for r in records] == [
        ("P-000001", "rec-1", 3), ("P-000002", "rec-2", 1)]
    assert records[0]["content_type"] == "application/json"
    assert "body" not in records[0]  # bodies only when asked for
    assert partner_sim.records(bodies=True)[0]["body"] == PERSON
    assert partner_sim.stats()["records_created"] == 2


def test_a_document_upload_records_size_sha_name_and_type(partner_sim):
    patient = post_record(partner_sim).json()["id"]
    data = os.urandom(5000)
    response = post_document(partner_sim, patient, data)
    assert response.status_code == 201 and response.json()["id"] == "D-000001"
    [doc] = partner_sim.records()[0]["documents"]
    assert doc["size"] == len(data) and doc["sha256"] == hashlib.sha256(data).hexdigest()
    assert (doc["name"], doc["content_type"], doc["idempotency_key"]) == (
        "scan.pdf", "application/pdf", "doc-1")
    assert partner_sim.records(bodies=True)[0]["documents"][0]["fields"] == {"type": "id-card"}
    stats = partner_sim.stats()
    assert stats["documents_created"] == 1 and stats["bytes_received"] > len(data)


def test_a_replayed_key_answers_the_first_response_and_creates_nothing(partner_sim):
    first = post_record(partner_sim)
    again = post_record(partner_sim, dict(reversed(PERSON.items())))  # same JSON, other order
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    patient = first.json()["id"]
    doc = post_document(partner_sim, patient, b"x" * 3000)
    doc_again = post_document(partner_sim, patient, b"x" * 3000, name="renamed.pdf")
    assert doc_again.status_code == 201 and doc_again.json() == doc.json()
    stats = partner_sim.stats()
    assert stats["duplicates_suppressed"] == {"record": 1, "document": 1}
    assert (stats["records_created"], stats["documents_created"]) == (1, 1)


def test_a_key_reused_with_another_body_is_422(partner_sim):
    patient = post_record(partner_sim).json()["id"]
    other = post_record(partner_sim, {**PERSON, "email": "sam@example.com"})
    assert other.status_code == 422
    assert other.json() == {"error": "idempotency key reused with a different body"}
    assert post_document(partner_sim, patient, b"a" * 100).status_code == 201
    assert post_document(partner_sim, patient, b"b" * 100).status_code == 422
    second = post_record(partner_sim, {"first_name": "Sam"}, key="rec-2").json()["id"]
    assert post_document(partner_sim, second, b"a" * 100).status_code == 422  # other patient
    stats = partner_sim.stats()
    assert stats["idempotency_conflicts"] == 3 and stats["documents_created"] == 1


def test_concurrent_requests_with_one_key_create_one_record(partner_sim):
    partner_sim.configure(latency_ms=50)
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda _: post_record(partner_sim), range(16)))
    assert {(a.status_code, a.json()["id"]) for a in answers} == {(201, "P-000001")}
    stats = partner_sim.stats()
    assert stats["records_created"] == 1 and stats["duplicates_suppressed"]["record"] == 15


@pytest.mark.parametrize("partner_sim", [{"token": "s3cret-token"}], indirect=True)
def test_a_configured_token_is_required_and_forbidden_mode_is_403(partner_sim):
    assert post_record(partner_sim).status_code == 401
    wrong = post_record(partner_sim, Authorization="Bearer nope")
    assert wrong.status_code == 401 and wrong.json() == {"error": "invalid token"}
    assert post_record(partner_sim, Authorization="Bearer s3cret-token").status_code == 201
    partner_sim.configure(forbidden=True)
    assert post_record(partner_sim, key="rec-2",
                       Authorization="Bearer s3cret-token").status_code == 403
    assert partner_sim.stats()["records_created"] == 1


def test_requests_the_partner_would_refuse(partner_sim):
    assert post_record(partner_sim, key=None).json() == {
        "error": "Idempotency-Key header is required"}
    assert post_record(partner_sim, key=None).status_code == 400
    assert post_record(partner_sim, ["not", "an", "object"]).status_code == 400
    garbage = requests.post(f"{partner_sim.url}/patients", data=b"{nope",
                            headers={"Idempotency-Key": "g"}, timeout=5)
    assert garbage.status_code == 400
    missing = post_document(partner_sim, "P-999999", b"data")
    assert missing.status_code == 404 and "P-999999" in missing.json()["error"]
    patient = post_record(partner_sim).json()["id"]
    no_file = requests.post(f"{partner_sim.url}/patients/{patient}/documents",
                            files={"other": ("a.txt", b"x")},
                            headers={"Idempotency-Key": "d"}, timeout=5)
    assert no_file.status_code == 400 and "'file'" in no_file.json()["error"]
    assert requests.get(f"{partner_sim.url}/patients", timeout=5).status_code == 405
    assert requests.post(f"{partner_sim.root}/elsewhere", timeout=5).status_code == 404
    assert partner_sim.stats()["records_created"] == 1


def test_a_rejected_record_is_422_and_echoes_a_submitted_value(partner_sim):
    answer = post_record(partner_sim, {"reject": True, "email": "jane@example.com"})
    assert answer.status_code == 422
    assert answer.json() == {"error": "field email jane@example.com is invalid"}
    assert partner_sim.stats()["records_created"] == 0


@pytest.mark.parametrize("partner_sim", [{"base": "/v2/partner"}], indirect=True)
def test_the_base_path_is_configurable(partner_sim):
    assert partner_sim.url.endswith("/v2/partner")
    assert post_record(partner_sim).status_code == 201
    assert requests.post(f"{partner_sim.root}/api/patients", json={}, timeout=5,
                         headers={"Idempotency-Key": "x"}).status_code == 404


def test_request_log_lines_carry_no_values(partner_sim, caplog):
    caplog.set_level("INFO", logger="formrelay.partner_sim")
    post_record(partner_sim, key="secret-looking-key")
    post_record(partner_sim, {"reject": True, "email": "jane@example.com"}, key="k2")
    lines = [r.getMessage() for r in caplog.records if r.name == "formrelay.partner_sim"]
    key_hash = hashlib.sha256(b"secret-looking-key").hexdigest()[:8]
    assert re.fullmatch(rf"POST record 201 \d+ms key={key_hash} created", lines[0]), lines
    assert lines[1].startswith("POST record 422 ")
    assert not any(v in caplog.text for v in ("Jane", "jane@example.com", "secret-looking"))


# faults ------------------------------------------------------------------------------


def test_scripted_responses_come_in_order_per_kind(partner_sim):
    patient = post_record(partner_sim, key="setup").json()["id"]
    pending = partner_sim.script(
        {"kind": "document", "status": 500, "count": 2},
        {"kind": "record", "status": 503},
        {"kind": "record", "timeout": True, "hang_seconds": 10},
        {"kind": "record", "status": 429, "retry_after": 7},
        {"kind": "record", "status": 429, "retry_after": 7, "retry_after_date": True},
        {"kind": "record", "status": 401},
        {"kind": "record", "status": 200, "body": {}})
    assert pending == 8
    assert post_record(partner_sim).status_code == 503
    started = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        post_record(partner_sim, timeout=0.3)
    assert time.monotonic() - started < 2
    seconds = post_record(partner_sim)
    assert seconds.status_code == 429 and seconds.headers["Retry-After"] == "7"
    dated = post_record(partner_sim)
    assert dated.status_code == 429
    when = email.utils.parsedate_to_datetime(dated.headers["Retry-After"]).timestamp()
    assert 5 <= when - time.time() <= 9
    assert post_record(partner_sim).status_code == 401
    no_id = post_record(partner_sim)
    assert (no_id.status_code, no_id.json()) == (200, {})
    assert [post_document(partner_sim, patient, b"d").status_code for _ in range(3)] == [
        500, 500, 201]
    assert post_record(partner_sim).status_code == 201  # the script is used up
    stats = partner_sim.stats()
    assert stats["forced"] == {"script": 8} and stats["script_pending"] == 0
    assert stats["records_created"] == 2  # setup + the last one: forced answers create nothing


def test_echo_answers_quote_the_values_and_the_file_name_but_never_log_them(
        partner_sim, caplog):
    caplog.set_level("INFO", logger="formrelay.partner_sim")
    patient = post_record(partner_sim, key="setup").json()["id"]
    partner_sim.script({"kind": "record", "echo": True},
                       {"kind": "document", "status": 409, "echo": True})
    refused = post_record(partner_sim, {"name": "O'Brien Smith", "n": {"dx": "Flu A"}})
    assert refused.status_code == 422
    text = refused.json()["error"]
    assert "'O'Brien Smith'" in text and "O&#x27;Brien Smith" in text and "FLU A" in text
    assert "starting \"O'Brien Smith\"" in text
    conflict = post_document(partner_sim, patient, b"d", name="Jane_Doe_HIV.pdf")
    assert conflict.status_code == 409 and "file Jane_Doe_HIV.pdf rejected" in (
        conflict.json()["error"])
    assert not any(v in caplog.text for v in ("Brien", "Flu", "Jane"))
    with pytest.raises(ValueError, match="echo takes no body"):
        partner_sim.script({"kind": "record", "echo": True, "body": {}})


def test_accept_then_timeout_creates_one_record_across_retries(partner_sim):
    partner_sim.script({"kind": "record", "accept_then_timeout": True, "hang_seconds": 30})
    failures: list[BaseException] = []

    def first_try() -> None:
        try:
            post_record(partner_sim, timeout=2)
        except requests.RequestException as exc:
            failures.append(exc)

    client = threading.Thread(target=first_try)
    client.start()
    # accepted while the client still waits for an answer
    stats = wait_until(lambda: (s := partner_sim.stats())["records_created"] == 1 and s, 1.0,
                       "the record to be created before the answer")
    assert stats["in_flight"] == 1
    client.join(10)
    assert isinstance(failures[0], requests.ReadTimeout)
    retry = post_record(partner_sim)
    assert retry.status_code == 201 and retry.json()["id"] == "P-000001"
    stats = partner_sim.stats()
    assert stats["records_created"] == 1 and stats["duplicates_suppressed"]["record"] == 1
    assert len(partner_sim.records()) == 1


def test_a_hang_blocks_nobody_and_ends_when_its_client_leaves(partner_sim):
    partner_sim.script({"kind": "record", "timeout": True, "hang_seconds": 30})
    outcome: list[BaseException] = []

    def hanging() -> None:
        try:
            post_record(partner_sim, key="hangs", timeout=1.5)
        except requests.RequestException as exc:
            outcome.append(exc)

    client = threading.Thread(target=hanging)
    client.start()
    wait_until(lambda: partner_sim.stats()["in_flight"] == 1, 5, "the hanging request")
    started = time.monotonic()
    assert post_record(partner_sim, key="other").status_code == 201
    assert time.monotonic() - started < 0.5
    client.join(10)
    assert isinstance(outcome[0], requests.ReadTimeout)
    # the client gave up after 1.5 s: the server notices and frees the thread long before 30 s
    wait_until(lambda: partner_sim.stats()["in_flight"] == 0, 5, "the hang to end")
    assert partner_sim.stats()["requests_by_status"]["504"] == 1


def test_stop_does_not_wait_for_hanging_requests():
    sim = run_in_thread(hang_seconds=60, timeout_rate=1.0)
    answers: list[int] = []
    client = threading.Thread(target=lambda: answers.append(post_record(sim, timeout=30)
                                                            .status_code))
    client.start()
    wait_until(lambda: sim.stats()["in_flight"] == 1, 5, "the hanging request")
    started = time.monotonic()
    sim.stop()
    assert time.monotonic() - started < 3
    client.join(5)
    assert answers == [504]  # cut short, and still answered before the connections closed


def test_an_error_rate_with_a_seed_is_the_expected_fraction_and_reproducible(partner_sim_factory):
    sim = partner_sim_factory(error_rate=0.25, seed=1234)

    def run(n: int) -> list[int]:
        return [post_record(sim, {"n": i}, key=f"k{i}").status_code for i in range(n)]

    first = run(400)
    assert set(first) == {201, 503}
    assert abs(first.count(503) / 400 - 0.25) < 0.06
    assert sim.stats()["records_created"] == first.count(201)
    sim.reset()  # back to the start knobs, seed included
    assert run(400) == first
    sim.configure(seed=99)
    assert run(400) != first


def test_rates_add_up_as_separate_slices(partner_sim_factory):
    sim = partner_sim_factory(rate_limit_rate=0.3, error_rate=0.3, retry_after=4,
                              retry_after_date=True, seed=5)
    answers = []
    for i in range(300):
        answer = post_record(sim, {"n": i}, key=f"k{i}")
        answers.append((answer.status_code, answer.headers.get("Retry-After")))
    counts = {s: sum(code == s for code, _ in answers) for s in (201, 429, 503)}
    assert sum(counts.values()) == 300
    assert all(abs(counts[s] / 300 - 0.3) < 0.08 for s in (429, 503)), counts
    retry_after = {header for code, header in answers if code == 429}
    assert all(email.utils.parsedate_to_datetime(h) for h in retry_after)  # HTTP dates
    assert {header for code, header in answers if code != 429} == {None}
    assert sim.stats()["forced"]["random"] == counts[429] + counts[503]


def test_an_outage_until_turned_off_and_one_that_ends_by_itself(partner_sim):
    answer = requests.post(f"{partner_sim.root}/_sim/config", json={"outage": True}, timeout=5)
    assert answer.status_code == 200 and answer.json()["outage"] is True
    assert [post_record(partner_sim, key=f"o{i}").status_code for i in range(3)] == [503] * 3
    partner_sim.configure(outage=False)
    assert post_record(partner_sim, key="after").status_code == 201
    partner_sim.configure(outage_seconds=1.0)
    first = post_record(partner_sim, key="during")
    assert first.status_code == 503 and first.headers["Retry-After"] in ("1", "2")
    started = time.monotonic()
    wait_until(lambda: post_record(partner_sim, key="during").status_code == 201, 5,
               "the outage to end by itself", interval=0.1)
    assert 0.5 < time.monotonic() - started < 3
    assert partner_sim.stats()["forced"]["outage"] >= 4


def test_parallel_requests_are_served_in_parallel(partner_sim):
    partner_sim.configure(latency_ms=300)
    started = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(lambda i: post_record(partner_sim, {"n": i}, key=f"p{i}")
                              .status_code, range(16)))
    elapsed = time.monotonic() - started
    assert codes == [201] * 16
    assert partner_sim.stats()["max_in_flight"] == 16
    assert 0.3 <= elapsed < 1.5  # not queued behind each other (16 x 0.3 s = 4.8 s)


# control -------------------------------------------------------------------------------


def test_control_rejects_bad_values_and_changes_nothing(partner_sim):
    root = f"{partner_sim.root}/_sim"
    for body in ({"error_rate": 1.5}, {"no_such_knob": 1}, {"error_rate": 0.6, "timeout_rate": 0.6},
                 {"latency_ms": "fast"}, {"outage": "yes"}):
        answer = requests.post(f"{root}/config", json=body, timeout=5)
        assert answer.status_code == 400, body
    bad_script = [{"kind": "record", "status": 503}, {"kind": "nope", "status": 503}]
    answer = requests.post(f"{root}/script", json=bad_script, timeout=5)
    assert answer.status_code == 400 and "item 2" in answer.json()["error"]
    config = partner_sim.config()
    assert (config["error_rate"], config["outage"], config["script_pending"]) == (0, False, 0)
    assert requests.get(f"{root}/health", timeout=5).json() == {"status": "ok"}
    assert requests.get(f"{root}/nope", timeout=5).status_code == 404
    assert requests.get(f"{root}/reset", timeout=5).status_code == 405


def test_reset_forgets_everything_and_restores_the_start_knobs(partner_sim_factory):
    sim = partner_sim_factory(latency_ms=1)
    post_record(sim)
    sim.configure(error_rate=1.0, latency_ms=5)
    sim.script({"kind": "record", "status": 500})
    sim.reset()
    assert sim.records() == [] and sim.stats()["requests_total"] == 0
    config = sim.config()
    assert (config["error_rate"], config["latency_ms"], config["script_pending"]) == (0, 1, 0)
    answer = post_record(sim)  # the old key is forgotten too: a new record, numbered from 1
    assert answer.status_code == 201 and answer.json()["id"] == "P-000001"


# memory --------------------------------------------------------------------------------


def _status_kib(field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    assert match, field
    return int(match.group(1))


class StreamedUpload:
    """A multipart body of `size` bytes, generated as it is sent (never whole in memory)."""

    boundary = "partner-sim-test-boundary"

    def __init__(self, size: int) -> None:
        self.size = size
        self.sha256 = hashlib.sha256()
        self.head = (f"--{self.boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                     f"filename=\"big.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                     ).encode()
        self.tail = f"\r\n--{self.boundary}--\r\n".encode()
        self.block = os.urandom(64 * 1024)

    def __len__(self) -> int:
        return len(self.head) + self.size + len(self.tail)

    def __iter__(self) -> Iterator[bytes]:
        yield self.head
        left = self.size
        while left:
            piece = self.block[:min(left, len(self.block))]
            self.sha256.update(piece)
            left -= len(piece)
            yield piece
        yield self.tail


def test_a_20_mib_upload_is_streamed_not_held_in_memory(partner_sim):
    patient = post_record(partner_sim).json()["id"]
    upload = StreamedUpload(20 * 1024 * 1024)
    post_document(partner_sim, patient, b"warm-up", key="warm")  # first-use allocations
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM, the peak RSS
    before = _status_kib("VmRSS")
    answer = requests.post(
        f"{partner_sim.url}/patients/{patient}/documents", data=upload, timeout=60,
        headers={"Idempotency-Key": "big",
                 "Content-Type": f"multipart/form-data; boundary={upload.boundary}"})
    peak_growth_mib = (_status_kib("VmHWM") - before) / 1024
    assert answer.status_code == 201, answer.text
    doc = partner_sim.records()[0]["documents"][-1]
    assert doc["size"] == upload.size and doc["sha256"] == upload.sha256.hexdigest()
    assert peak_growth_mib < 10, f"peak RSS grew {peak_growth_mib:.1f} MiB for a 20 MiB upload"


# the command ---------------------------------------------------------------------------


def formrelay_bin() -> str:
    venv_bin = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "formrelay"
    return str(venv_bin) if venv_bin.exists() else "formrelay"


def read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, f"no output within {timeout}s"
    return proc.stdout.readline()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_the_command_serves_needs_no_config_and_stops_on_a_signal(sig):
    env = {"PATH": os.environ["PATH"]}  # no database, partner or secret settings at all
    proc = subprocess.Popen(
        [formrelay_bin(), "partner-sim", "--listen", "127.0.0.1:0", "--token", "cli-token",
         "--latency-ms", "5", "--seed", "3", "--hang-seconds", "60"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = read_line(proc, 20)
        match = re.match(r"partner-sim serving (http://127\.0\.0\.1:(\d+)/api) ", first)
        assert match, first
        url, root = match.group(1), f"http://127.0.0.1:{match.group(2)}"
        assert requests.get(f"{root}/_sim/health", timeout=5).json() == {"status": "ok"}
        assert requests.get(f"{root}/_sim/config", timeout=5).json()["latency_ms"] == 5
        headers = {"Idempotency-Key": "cli-key", "Authorization": "Bearer cli-token"}
        assert requests.post(f"{url}/patients", json=PERSON, timeout=5).status_code == 401
        assert requests.post(f"{url}/patients", json=PERSON, headers=headers,
                             timeout=5).status_code == 201
        # a request hanging for 60 s must not hold up the stop
        requests.post(f"{root}/_sim/script", json={"kind": "record", "timeout": True},
                      timeout=5).raise_for_status()
        hanging = threading.Thread(target=lambda: requests.post(
            f"{url}/patients", json={}, headers=headers, timeout=30), daemon=True)
        hanging.start()
        wait_until(lambda: requests.get(f"{root}/_sim/stats", timeout=5).json()["in_flight"],
                   5, "the hanging request")
        started = time.monotonic()
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == 0
        assert time.monotonic() - started < 5
    finally:
        if proc.poll() is None:
            proc.kill()
        out, err = proc.communicate(timeout=10)
    assert re.search(r"formrelay\.partner_sim POST record 201 \d+ms key=[0-9a-f]{8} created", out)
    assert "Jane" not in out and "cli-token" not in out + err and "cli-key" not in out
    assert "Traceback" not in err, err


def test_the_command_refuses_bad_flags_in_one_line():
    env = {"PATH": os.environ["PATH"]}
    both = subprocess.run([formrelay_bin(), "partner-sim", "--listen", "127.0.0.1:0",
                           "--error-rate", "0.7", "--timeout-rate", "0.5"],
                          env=env, capture_output=True, text=True, timeout=30)
    assert both.returncode == 2
    assert both.stderr.strip().splitlines() == [
        "formrelay partner-sim: rate_limit_rate + error_rate + timeout_rate + "
        "timeout_after_accept_rate add up to 1.2; at most 1"]
    out_of_range = subprocess.run([formrelay_bin(), "partner-sim", "--error-rate", "2"],
                                  env=env, capture_output=True, text=True, timeout=30)
    assert out_of_range.returncode == 2 and "error_rate must be between 0 and 1" in (
        out_of_range.stderr)
