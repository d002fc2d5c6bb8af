"""Notify: one signed POST per captured job at the end of the request, never a slow one.

The sidecar is played by small TCP servers in this process: one that records
and answers, one that reads and never answers, a port that refuses, and a
port that swallows SYNs. Costs are measured inside PHP (from the first
do_action() to the end of WordPress's shutdown hook) and around the whole PHP
process, against a baseline run without a sidecar URL.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time

import pytest

from devstack.wordpress.logs import log_size, read_log
from sidecar.signing import verify
from tests.wordpress.bridge_fixtures import (
    BlackholeSidecar,
    RecordingSidecar,
    SilentSidecar,
    Submission,
    bridge_site,
    capture,
    closed_port,
    jobs,
    make_form,
    median_capture,
    plugin_problems,
    reset_bridge,
    update_settings,
)
from tests.wordpress.conftest import SHARED_SECRET, SIDECAR_URL

pytestmark = [pytest.mark.wordpress, pytest.mark.db]

__all__ = ["bridge_site"]  # a fixture, used by name

SECRET = "test-secret-0123456789-abcdef"
MAX_ADDED_SECONDS = 0.3
RUNS = 3

# Fakes fastcgi_finish_request() (PHP-FPM only) to see that it is called, and when.
FAKE_FPM = """
function fastcgi_finish_request() {
    $GLOBALS['fr_finished'][] = microtime( true );
    return true;
}
register_shutdown_function( function () {
    echo "\\n[finished:" . wp_json_encode( $GLOBALS['fr_finished'] ?? array() ) . "]";
} );
"""


@pytest.fixture
def wp(bridge_site):
    reset_bridge(bridge_site)
    return bridge_site


@pytest.fixture(scope="module")
def form(bridge_site):
    return make_form(bridge_site, "Intake")


@pytest.fixture
def sidecar():
    server = RecordingSidecar()
    yield server
    server.close()


def hmac_hex(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def assert_signed_notify(req, job_id: int, secret: str) -> None:
    assert (req.method, req.path) == ("POST", "/v1/notify")
    assert req.body == b'{"job_id":%d}' % job_id
    assert json.loads(req.body) == {"job_id": job_id}
    assert req.headers["content-type"] == "application/json"
    assert req.headers["content-length"] == str(len(req.body))
    timestamp = req.headers["x-formrelay-timestamp"]
    assert timestamp.isdigit() and abs(int(timestamp) - req.at) <= 5
    signature = req.headers["x-formrelay-signature"]
    assert signature == "sha256=" + hmac_hex(secret, timestamp, req.body)
    assert signature != "sha256=" + hmac_hex(secret + "x", timestamp, req.body)
    verify(secret, timestamp, signature, req.body)  # and the sidecar's own check agrees


def test_one_signed_post_per_job(wp, form, sidecar):
    update_settings(wp, sidecar_url=sidecar.url, shared_secret=SECRET)

    run = capture(wp, Submission.basic(form, 101), Submission.basic(form, 0))

    assert run.stdout == "captured" and plugin_problems(run.stderr) == []
    rows = jobs(wp)
    assert len(rows) == 2
    received = sidecar.drain()
    assert len(received) == 2
    for req, row in zip(received, rows, strict=True):
        assert_signed_notify(req, row["id"], SECRET)
        assert req.headers["host"] == f"127.0.0.1:{sidecar.port}"


def test_a_duplicate_entry_is_not_notified_again(wp, form, sidecar):
    update_settings(wp, sidecar_url=sidecar.url, shared_secret=SECRET)
    sub = Submission.basic(form, 102)

    capture(wp, sub)
    capture(wp, sub)

    [row] = jobs(wp)
    [req] = sidecar.drain()
    assert_signed_notify(req, row["id"], SECRET)


def test_a_base_path_in_the_sidecar_url_is_kept(wp, form, sidecar):
    update_settings(wp, sidecar_url=f"{sidecar.url}/formrelay/", shared_secret=SECRET)

    capture(wp, Submission.basic(form, 103))

    [req] = sidecar.drain()
    assert req.path == "/formrelay/v1/notify"


def test_fastcgi_finish_request_comes_first_and_once(wp, form, sidecar):
    update_settings(wp, sidecar_url=sidecar.url, shared_secret=SECRET)

    run = capture(wp, Submission.basic(form, 104), Submission.basic(form, 105), setup=FAKE_FPM)

    finished = json.loads(re.search(r"\[finished:(.*)\]$", run.stdout).group(1))
    assert len(finished) == 1
    received = sidecar.drain()
    assert len(received) == 2
    assert all(req.at >= finished[0] for req in received)


def test_no_notify_without_a_url_or_a_secret(wp, form, sidecar):
    update_settings(wp, sidecar_url=sidecar.url)  # no secret
    run = capture(wp, Submission.basic(form, 106), setup=FAKE_FPM)
    assert "[finished:[]]" in run.stdout  # not even the response was cut short

    update_settings(wp, sidecar_url="", shared_secret=SECRET)  # no URL
    capture(wp, Submission.basic(form, 107))

    assert [r["entry_id"] for r in jobs(wp)] == [106, 107]  # captured all the same
    assert sidecar.drain() == []


def test_forms_not_selected_are_not_notified(wp, form, sidecar):
    update_settings(wp, sidecar_url=sidecar.url, shared_secret=SECRET, forms=[])

    capture(wp, Submission.basic(form, 108))

    assert jobs(wp) == []
    assert sidecar.drain() == []


def test_a_sidecar_that_is_down_or_hung_adds_no_time(wp, form, record_property):
    """Closed port, a listener that never answers, a host that drops SYNs: < 0.3 s added."""
    counter = iter(range(200, 10_000))

    def make() -> Submission:
        return Submission.basic(form, next(counter))

    update_settings(wp, sidecar_url="", shared_secret=SECRET)
    base_php, base_wall, _ = median_capture(wp, make, RUNS)
    costs = {"baseline": (base_php, base_wall)}

    # A stopped sidecar: connection refused.
    offset = log_size(wp.debug_log)
    update_settings(wp, sidecar_url=closed_port())
    costs["refused"] = median_capture(wp, make, RUNS)[:2]
    assert "the sidecar was not notified (connect error 111" in read_log(wp.debug_log, offset)

    # A hung sidecar: accepts, reads, never answers.
    silent = SilentSidecar()
    try:
        update_settings(wp, sidecar_url=silent.url)
        php, wall, runs = median_capture(wp, make, RUNS)
        costs["hung"] = (php, wall)
        # The requests did go out (this is not a no-op): signed, one per job.
        got = silent.wait_for(RUNS)
        ids = [r["id"] for r in jobs(wp)][-RUNS:]
        for req, job_id in zip(got, ids, strict=True):
            assert_signed_notify(req, job_id, SECRET)
        assert all(r.stdout == "captured" for r in runs)
    finally:
        silent.close()

    # An unreachable host: SYNs dropped, so only the connect timeout is paid.
    blackhole = BlackholeSidecar()
    try:
        update_settings(wp, sidecar_url=blackhole.url)
        costs["unreachable"] = median_capture(wp, make, RUNS)[:2]
    finally:
        blackhole.close()

    record_property("notify_costs", json.dumps(costs))
    print("\nnotify costs, median seconds (in PHP, whole process):", json.dumps(costs))
    for case in ("refused", "hung", "unreachable"):
        php, wall = costs[case]
        assert php - base_php < MAX_ADDED_SECONDS, (case, costs)
        assert wall - base_wall < MAX_ADDED_SECONDS, (case, costs)
    # The unreachable case did wait for (about) the connect timeout: the bound is real.
    assert costs["unreachable"][0] - base_php > 0.1, costs
    assert len(jobs(wp)) == 4 * RUNS  # every submission was queued


def test_the_wp_config_constants_sign_and_address_the_notify(wordpress):
    """The shared session site defines FORMRELAY_SIDECAR_URL and a secret full of quotes."""
    out = wordpress.php(
        """
        update_option( 'formrelay_bridge_settings', array(
            'sidecar_url'   => 'http://option.invalid:1',
            'shared_secret' => 'option-secret-0123456789',
        ) );
        $target  = FormRelay_Notify::target( FormRelay_Settings::sidecar_url() );
        $request = FormRelay_Notify::build_request(
            $target, FormRelay_Settings::shared_secret(), 42, (int) $snippet_args[0]
        );
        delete_option( 'formrelay_bridge_settings' );
        echo wp_json_encode( array( 'target' => $target, 'request' => $request ) );
        """,
        str(int(time.time())),
    )
    data = json.loads(out)
    assert data["target"]["remote"] == "tcp://" + SIDECAR_URL.removeprefix("http://")
    head, _, body = data["request"].partition("\r\n\r\n")
    lines = head.split("\r\n")
    assert lines[0] == "POST /v1/notify HTTP/1.1"
    headers = {k.lower(): v for k, _, v in (line.partition(": ") for line in lines[1:])}
    assert headers["host"] == SIDECAR_URL.removeprefix("http://")
    assert body == '{"job_id":42}'
    timestamp = headers["x-formrelay-timestamp"]
    verify(SHARED_SECRET, timestamp, headers["x-formrelay-signature"], body.encode())
    assert headers["x-formrelay-signature"] == "sha256=" + hmac_hex(
        SHARED_SECRET, timestamp, body.encode())
    assert SHARED_SECRET not in data["request"]
