"""Sealed submissions (issue 16): with a seal public key, capture stores the snapshot sealed.

The key comes from the settings option or from FORMRELAY_SEAL_PUBLIC_KEY in
wp-config.php (which wins). A sealed row's snapshot is the base64 of a libsodium
sealed box that sidecar.seal.Opener opens to exactly the JSON an unsealed capture
writes for the same submission; its seal_key is the key's id. A key that cannot seal
stores the job in clear with a `job.unsealed` log row. The settings page, its
sanitizer and the doctor's round trip know the key too.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from typing import Any

import pytest
import requests

from devstack.wordpress.logs import log_size, read_log
from devstack.wordpress.php import php_literal
from sidecar.seal import KeyPair, Opener, generate
from sidecar.signing import sign_doctor
from tests.wordpress.bridge_fixtures import (
    OPTION,
    PDF,
    PNG,
    Submission,
    capture,
    form_fields,
    jobs,
    login,
    make_form,
    plugin_problems,
    settings_page_url,
    update_settings,
    upload,
)
from tests.wordpress.conftest import BRIDGE_SLUG, BRIDGE_SOURCE, SHARED_SECRET, running_site
from tests.wordpress.test_bridge_capture import COUNT_QUERIES

pytestmark = [pytest.mark.wordpress, pytest.mark.db]

ORIGINAL_NAMES = ("Secret-Diagnosis.pdf", "Zebulon-scan.png")
VALUES = ("Zebulon", "Quartermaine", "jane.doe@example.com", "1980-02-01", "100% sure",
          "Secret-Diagnosis", "Zebulon-scan")


@pytest.fixture(scope="module")
def form(bridge_site):
    return make_form(bridge_site, "Intake")


@pytest.fixture(scope="module")
def pair() -> KeyPair:
    return generate()


def opener(pair: KeyPair) -> Opener:
    return Opener.parse(pair.private)


def submission(wp, form, entry_id: int) -> Submission:
    files = [upload(wp, form, ORIGINAL_NAMES[0], PDF), upload(wp, form, ORIGINAL_NAMES[1], PNG)]
    return Submission.basic(form, entry_id, name="Zebulon Quartermaine").with_modern_files(4, files)


def raw_rows(wp) -> list[dict[str, Any]]:
    with wp.db() as conn:
        cur = conn.cursor(dictionary=True)
        cur.execute(f"SELECT * FROM `{wp.table_prefix}formrelay_jobs` ORDER BY id")
        return cur.fetchall()


def log_rows(wp, event: str) -> list[dict[str, Any]]:
    with wp.db() as conn:
        cur = conn.cursor(dictionary=True)
        cur.execute(f"SELECT * FROM `{wp.table_prefix}formrelay_log` WHERE event = %s"
                    " ORDER BY id", (event,))
        return cur.fetchall()


def clear_jobs(wp) -> None:
    with wp.db() as conn:
        cur = conn.cursor()
        cur.execute(f"DELETE FROM `{wp.table_prefix}formrelay_log`")
        cur.execute(f"DELETE FROM `{wp.table_prefix}formrelay_jobs`")


def opened(row: dict[str, Any], pair: KeyPair) -> Any:
    """The sealed row's snapshot, opened with the pair's private key and parsed."""
    assert row["seal_key"] == pair.key_id
    ciphertext = base64.b64decode(row["snapshot"], validate=True)
    return json.loads(opener(pair).open(row["seal_key"], ciphertext))


def assert_no_values(text: str) -> None:
    for value in VALUES:
        assert value not in text, value


def assert_clean(run) -> None:
    assert run.stdout == "captured"
    assert plugin_problems(run.stderr) == []


def define(name: str, value: str) -> str:
    """PHP for capture(setup=...): a wp-config-like constant for this request."""
    return f"define( {php_literal(name)}, {php_literal(value)} );"


# ------------------------------------------------------------------ capture
def test_a_key_in_the_settings_seals_the_snapshot_that_opens_to_the_clear_json(wp, form, pair):
    sub = submission(wp, form, 101)
    assert_clean(capture(wp, sub))
    [clear] = raw_rows(wp)
    assert clear["seal_key"] is None
    expected = json.loads(clear["snapshot"])
    assert expected["fields"] == sub.fields and len(expected["files"]) == 2  # plain JSON
    clear_jobs(wp)

    stored = update_settings(wp, seal_public_key=pair.public)
    assert stored["seal_public_key"] == pair.public
    offset = log_size(wp.debug_log)
    assert_clean(capture(wp, sub))

    [row] = raw_rows(wp)
    assert row["reference"] == clear["reference"] == f"wpforms:{form.id}:101"
    assert opened(row, pair) == expected  # exactly what the clear capture wrote
    # Nothing of the submission is readable in the row, nor the files' original names.
    assert_no_values(json.dumps(row, default=str))
    assert_no_values(base64.b64decode(row["snapshot"]).decode("latin-1"))
    assert log_rows(wp, "job.unsealed") == []
    assert "FormRelay" not in read_log(wp.debug_log, offset)


def test_sealing_adds_no_query_and_never_repeats_a_ciphertext(wp, form, pair):
    update_settings(wp, seal_public_key=pair.public)
    first, second = Submission.basic(form, 102), Submission.basic(form, 103)
    second.fields = first.fields  # the same fields: a sealed box is still new each time

    run = capture(wp, first, second, setup=COUNT_QUERIES)

    queries = json.loads(re.search(r"\[queries:(.*)\]", run.stdout).group(1))
    assert [q.split(" (")[0] for q in queries] == [
        f"INSERT INTO {wp.table_prefix}formrelay_jobs"] * 2, queries
    assert "jane.doe@example.com" not in "".join(queries)
    one, two = raw_rows(wp)
    assert one["snapshot"] != two["snapshot"]
    assert opened(one, pair)["fields"] == opened(two, pair)["fields"] == first.fields
    assert (opened(one, pair)["entry_id"], opened(two, pair)["entry_id"]) == (102, 103)


def test_without_a_key_nothing_changes(wp, form):
    assert_clean(capture(wp, Submission.basic(form, 104)))
    [row] = jobs(wp)
    assert row["seal_key"] is None
    assert row["snapshot"]["fields"]["2"]["value"] == "jane.doe@example.com"  # plain JSON


def test_a_constant_that_is_not_a_key_stores_the_job_in_clear_and_says_so(wp, form, pair):
    update_settings(wp, seal_public_key=pair.public)  # the constant wins, even a bad one
    bad = base64.b64encode(secrets.token_bytes(16)).decode()
    sub = submission(wp, form, 105)
    offset = log_size(wp.debug_log)

    run = capture(wp, sub, setup=define("FORMRELAY_SEAL_PUBLIC_KEY", bad))

    assert_clean(run)
    assert run.stderr == ""
    [row] = jobs(wp)
    assert row["seal_key"] is None and row["snapshot"]["fields"] == sub.fields
    [logged] = log_rows(wp, "job.unsealed")
    assert (logged["job_id"], logged["level"]) == (row["id"], "warning")
    assert logged["message"] == ("the snapshot is stored in clear: it could not be sealed"
                                 " (the seal public key is not 32 bytes in base64)")
    assert logged["created_at"] is not None
    log = read_log(wp.debug_log, offset)
    assert f"FormRelay Bridge: form {form.id} entry 105: job {row['id']} the snapshot is" in log
    assert_no_values(log)
    assert_no_values(json.dumps(logged, default=str))
    assert bad not in log


# --------------------------------------------------------------- settings
KEY = generate().public


@pytest.mark.parametrize(("given", "kept"), [
    (KEY, KEY), (f"  {KEY}\n", KEY), ("", ""),
    (KEY.rstrip("="), None), (KEY[:-2] + "==", None),  # 31 or 32 bytes without "="
    (base64.b64encode(bytes(31)).decode(), None), (base64.b64encode(bytes(33)).decode(), None),
    (base64.urlsafe_b64encode(b"\xfb" * 32).decode(), None),  # not standard base64
    (KEY[:20] + " " + KEY[20:-1], None), ("not a key", None), ([KEY], None), (32, None),
])
def test_the_sanitizer_keeps_good_keys_and_refuses_bad_ones(wp, given, kept):
    old = generate().public
    out = wp.php(
        """
        update_option( 'formrelay_bridge_settings',
            array( 'seal_public_key' => $snippet_args[1] ) );
        $GLOBALS['wp_settings_errors'] = array();
        $clean = FormRelay_Settings::sanitize( json_decode( $snippet_args[0], true ) );
        echo wp_json_encode( array( $clean['seal_public_key'],
            wp_list_pluck( get_settings_errors( 'formrelay_bridge_settings' ), 'code' ) ) );
        """,
        json.dumps({"seal_public_key": given}),
        old,
        user=wp.admin_user,
        admin=True,
    )
    if kept is None:
        assert json.loads(out) == [old, ["seal_public_key"]]
    else:
        assert json.loads(out) == [kept, []]


def test_the_key_id_is_the_sidecars(wp, pair):
    out = wp.php(
        """
        update_option( 'formrelay_bridge_settings',
            array( 'seal_public_key' => $snippet_args[0] ) );
        echo wp_json_encode( array( FormRelay_Seal::key_id(), FormRelay_Seal::public_key(),
            bin2hex( FormRelay_Seal::raw_key() ) ) );
        """,
        pair.public,
    )
    assert json.loads(out) == [pair.key_id, pair.public, base64.b64decode(pair.public).hex()]
    reset = wp.php(
        "delete_option( 'formrelay_bridge_settings' ); echo wp_json_encode( array("
        " FormRelay_Seal::key_id(), FormRelay_Seal::raw_key() ) );")
    assert json.loads(reset) == ["", ""]


def test_the_page_says_sealing_is_off_then_shows_the_key_id(wp, pair):
    session = login(wp, wp.admin_user, wp.admin_password)
    page = session.get(settings_page_url(wp), timeout=30).text
    assert "Sealing is off." in page
    assert "Submissions are stored in clear in FormRelay&#039;s tables." in page
    assert "formrelay keys generate" in page and "Sealed submissions" in page
    key_input = re.search(r'<input[^>]*id="formrelay_seal_public_key"[^>]*>', page).group(0)
    assert f'name="{OPTION}[seal_public_key]"' in key_input and 'value=""' in key_input
    assert "disabled" not in key_input

    # Saved through the form (options.php, its nonce), like an administrator does.
    resp = session.post(f"{wp.url}/wp-admin/options.php", allow_redirects=False, timeout=30,
                        data={**form_fields(page), f"{OPTION}[seal_public_key]": pair.public})
    assert resp.status_code == 302

    page = session.get(settings_page_url(wp), timeout=30).text
    assert "Sealing is off." not in page and "stored in clear" not in page
    assert f'<code class="formrelay-seal-key-id">{pair.key_id}</code>' in page
    assert f'value="{pair.public}"' in page


# ------------------------------------------- wp-config.php, the page, the doctor
@pytest.fixture(scope="module")
def sealed_site(request):
    """A WordPress whose wp-config.php sets FORMRELAY_SEAL_PUBLIC_KEY (and the shared secret,
    for the doctor; no sidecar URL: no notify)."""
    pair = generate()
    constants = {"FORMRELAY_SHARED_SECRET": SHARED_SECRET, "FORMRELAY_SEAL_PUBLIC_KEY": pair.public}
    with running_site(request, constants=constants,
                      plugins=[(BRIDGE_SLUG, BRIDGE_SOURCE)]) as wp:
        yield wp, pair


def test_the_wp_config_key_wins_and_seals(sealed_site):
    wp, pair = sealed_site
    other = generate()
    update_settings(wp, seal_public_key=other.public)
    form = make_form(wp, "Intake")
    sub = submission(wp, form, 201)

    assert_clean(capture(wp, sub))

    [row] = raw_rows(wp)
    assert row["seal_key"] == pair.key_id  # the constant's key, not the option's
    snapshot = opened(row, pair)
    assert snapshot["fields"] == sub.fields and snapshot["entry_id"] == 201
    assert [f["name"] for f in snapshot["files"]] == list(ORIGINAL_NAMES)
    assert_no_values(json.dumps(row, default=str))


def test_the_page_shows_the_wp_config_key_read_only(sealed_site):
    wp, pair = sealed_site
    session = login(wp, wp.admin_user, wp.admin_password)
    page = session.get(settings_page_url(wp), timeout=30).text
    key_input = re.search(r'<input[^>]*id="formrelay_seal_public_key"[^>]*>', page).group(0)
    assert "disabled" in key_input and f'value="{pair.public}"' in key_input
    assert "Set in wp-config.php (FORMRELAY_SEAL_PUBLIC_KEY)." in page
    assert f'<code class="formrelay-seal-key-id">{pair.key_id}</code>' in page
    assert "stored in clear" not in page


def doctor_answer(wp) -> requests.Response:
    timestamp, nonce = str(int(time.time())), secrets.token_hex(16)
    return requests.post(
        wp.url + "/?rest_route=/formrelay/v1/doctor", data=b"", timeout=30,
        headers={"X-FormRelay-Timestamp": timestamp, "X-FormRelay-Nonce": nonce,
                 "X-FormRelay-Signature": sign_doctor(SHARED_SECRET, "request", timestamp,
                                                      nonce, b"")})


def test_the_doctor_answer_carries_the_key(sealed_site):
    wp, pair = sealed_site
    resp = doctor_answer(wp)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) == {"version", "signature", "seal_key", "seal_public_key"}
    assert (body["seal_key"], body["seal_public_key"]) == (pair.key_id, pair.public)


def test_the_doctor_answer_without_a_key(wordpress):
    resp = doctor_answer(wordpress)
    assert resp.status_code == 200, resp.text
    assert (resp.json()["seal_key"], resp.json()["seal_public_key"]) == ("", "")
