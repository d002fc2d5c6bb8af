"""Settings → FormRelay, the option behind it, wp-config.php constants, and uninstall.

The page is used over HTTP like a browser: log in, GET the page, POST
options.php with the form's own nonce. The secret must never come back in
any page; saving needs the nonce and manage_options; bad template names and
priorities are refused with the old value kept.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any
from urllib.parse import urljoin

import pytest

from tests.wordpress.bridge_fixtures import (
    OPTION,
    PLUGIN_FILE,
    form_fields,
    login,
    make_form,
    settings_page_url,
    stored_secret,
    stored_settings,
    update_settings,
)
from tests.wordpress.conftest import (
    BRIDGE_SLUG,
    BRIDGE_SOURCE,
    SHARED_SECRET,
    SIDECAR_URL,
    reset_bridge,
)

pytestmark = [pytest.mark.wordpress, pytest.mark.db]

SECRET = "s3cr3t-VALUE-never-shown-0123456789"


@pytest.fixture(scope="module")
def admin(bridge_site):
    return login(bridge_site, bridge_site.admin_user, bridge_site.admin_password)


@pytest.fixture(scope="module")
def forms(bridge_site):
    """Two published forms, a draft form and an ordinary post."""
    intake = make_form(bridge_site, "Intake <b>form</b>")
    referral = make_form(bridge_site, "Referral")
    draft = make_form(bridge_site, "Draft form", status="draft")
    bridge_site.php(
        "wp_insert_post( array( 'post_type' => 'post', 'post_status' => 'publish',"
        " 'post_title' => 'Not a form' ) );"
    )
    return intake, referral, draft


def variants(secret: str) -> set[str]:
    """The ways a page could carry ``secret``: raw, HTML-escaped, JSON-escaped, URL-ish."""
    return {
        secret,
        html.escape(secret),
        html.escape(secret, quote=False),
        json.dumps(secret)[1:-1],
        secret.replace("'", "&#039;").replace('"', "&quot;"),
    }


def assert_secret_absent(page: str, secret: str) -> None:
    for form in variants(secret):
        assert form not in page, f"the secret appears in the page as {form!r}"


def get_page(session, wp) -> str:
    resp = session.get(settings_page_url(wp), timeout=30)
    assert resp.status_code == 200, resp.text[-2000:]
    assert '<div class="wrap formrelay-settings">' in resp.text
    return resp.text


def field_name(path: str) -> str:
    """The input name of a path: form_settings/12/template -> ...[form_settings][12][template]."""
    return OPTION + "".join(f"[{part}]" for part in path.split("/"))


def form_post(session, wp, page: str, values: dict[str, str | list[str]]):
    """POST options.php like the page's form, with its hidden fields (nonce included)."""
    data: dict[str, str | list[str]] = form_fields(page)
    data.update({field_name(k): v for k, v in values.items()})
    return session.post(f"{wp.url}/wp-admin/options.php", data=data, allow_redirects=False,
                        timeout=30)


def follow(session, wp, resp) -> str:
    """The page a redirect after saving leads to."""
    return session.get(urljoin(wp.url + "/", resp.headers["location"]), timeout=30).text


def input_tag(page: str, name: str) -> str:
    match = re.search(rf'<input[^>]*name="{re.escape(html.escape(name))}"[^>]*>', page)
    assert match, f"no input {name} in the page"
    return match.group(0)


# ------------------------------------------------------------------ the page
def test_the_secret_is_never_echoed_back(wp, admin):
    update_settings(wp, sidecar_url="http://127.0.0.1:8787", shared_secret=SECRET)

    page = get_page(admin, wp)

    assert_secret_absent(page, SECRET)
    assert "A secret is set." in page
    assert 'value=""' in input_tag(page, f"{OPTION}[shared_secret]")
    assert 'type="password"' in input_tag(page, f"{OPTION}[shared_secret]")
    assert 'value="http://127.0.0.1:8787"' in input_tag(page, f"{OPTION}[sidecar_url]")
    assert "Notifications are on." in page
    # The saved-settings redirect page does not carry it either.
    resp = form_post(admin, wp, page, {"shared_secret": ""})
    assert resp.status_code == 302
    assert_secret_absent(follow(admin, wp, resp), SECRET)

    reset_bridge(wp)
    page = get_page(admin, wp)
    assert "No secret is set." in page and "Notifications are off" in page


def test_published_wpforms_forms_are_listed_escaped(wp, admin, forms):
    intake, referral, draft = forms

    page = get_page(admin, wp)

    assert "Intake &lt;b&gt;form&lt;/b&gt;" in page and "Intake <b>form</b>" not in page
    assert "Referral" in page
    assert "Draft form" not in page and "Not a form" not in page
    for form in (intake, referral):
        assert f'name="{OPTION}[form_settings][{form.id}][template]"' in page
        box = re.search(rf'<input type="checkbox" id="formrelay_form_{form.id}"[^>]*>', page)
        assert box and "checked" in box.group(0)  # all forms are delivered by default
    assert f"[form_settings][{draft.id}]" not in page


def test_the_form_saves_forms_templates_priorities_and_the_secret(wp, admin, forms):
    intake, referral, _ = forms
    page = get_page(admin, wp)

    resp = form_post(admin, wp, page, {
        "sidecar_url": "http://127.0.0.1:8787/",
        "shared_secret": SECRET,
        "forms_mode": "selected",
        "forms/": [str(intake.id)],
        f"form_settings/{intake.id}/template": "intake.json.j2",
        f"form_settings/{intake.id}/priority": "3",
        f"form_settings/{referral.id}/template": "",
        f"form_settings/{referral.id}/priority": "10",
        "remove_data_on_uninstall": ["0", "1"],
    })

    assert resp.status_code == 302 and "settings-updated=true" in resp.headers["location"]
    assert stored_settings(wp) == {
        "sidecar_url": "http://127.0.0.1:8787",
        "forms": [intake.id],
        "form_settings": {str(intake.id): {"template": "intake.json.j2", "priority": 3,
                                           "partner": ""}},
        "remove_data_on_uninstall": True,
        "seal_public_key": "",  # sealing off (test_bridge_seal.py)
    }
    # The save through the page is published for the sidecar as well.
    with wp.db() as conn:
        cur = conn.cursor()
        cur.execute(f"SELECT value FROM {wp.table_prefix}formrelay_meta"
                    " WHERE name = 'delivery_settings'")
        row = json.loads(cur.fetchone()[0])
    assert (row["active"], row["forms"], row["form_settings"]) == (True, [intake.id], {
        str(intake.id): {"template": "intake.json.j2", "priority": 3, "partner": None}})

    # An empty secret keeps the stored one; unticking the checkbox posts the hidden 0.
    page = get_page(admin, wp)
    resp = form_post(admin, wp, page, {"shared_secret": "", "remove_data_on_uninstall": "0",
                                       "forms_mode": "all"})
    assert resp.status_code == 302
    saved = stored_settings(wp)
    assert stored_secret(wp) == SECRET
    assert saved["remove_data_on_uninstall"] is False and saved["forms"] == "all"

    # The remove box clears it.
    resp = form_post(admin, wp, get_page(admin, wp), {"clear_shared_secret": "1"})
    assert resp.status_code == 302 and stored_secret(wp) == ""


def test_bad_templates_and_priorities_are_refused_and_the_old_value_kept(wp, admin, forms):
    intake, referral, _ = forms
    update_settings(wp, form_settings={
        str(intake.id): {"template": "intake.json.j2", "priority": 3}})
    page = get_page(admin, wp)

    resp = form_post(admin, wp, page, {
        f"form_settings/{intake.id}/template": "../../etc/passwd.j2",
        f"form_settings/{intake.id}/priority": "500",
        f"form_settings/{referral.id}/template": "referral.json",
        f"form_settings/{referral.id}/priority": "-1",
        "shared_secret": "short",
        "sidecar_url": "javascript:alert(1)",
    })

    assert resp.status_code == 302
    saved = stored_settings(wp)
    assert saved["form_settings"] == {str(intake.id): {"template": "intake.json.j2", "priority": 3,
                                                       "partner": ""}}
    assert stored_secret(wp) == "" and saved["sidecar_url"] == ""
    shown = follow(admin, wp, resp)
    for text in (f"The template of form {intake.id}", f"The priority of form {intake.id}",
                 f"The template of form {referral.id}", f"The priority of form {referral.id}",
                 "The shared secret must be at least 16", "The sidecar URL must be"):
        assert text in shown, text
    assert "javascript:alert" not in shown and "passwd" not in shown


SANITIZE_EACH = """
update_option( 'formrelay_bridge_settings', array(
    'form_settings' => array(
        5 => array( 'template' => 'old.j2', 'priority' => 7, 'partner' => 'old' ),
    ),
) );
$results = array();
foreach ( json_decode( $snippet_args[0], true ) as $one ) {
    $clean     = FormRelay_Settings::sanitize( array( 'form_settings' => array( 5 => $one ) ) );
    $results[] = array(
        'stored' => $clean['form_settings'] ? $clean['form_settings'][5] : null,
        'errors' => wp_list_pluck( get_settings_errors( 'formrelay_bridge_settings' ), 'code' ),
    );
    $GLOBALS['wp_settings_errors'] = array();
}
echo wp_json_encode( $results );
"""


def sanitize_each(wp, inputs: list[dict]) -> list[dict]:
    """FormRelay_Settings::sanitize() of form 5's settings, stored as old.j2 / 7 / partner
    "old" before each."""
    return json.loads(wp.php(SANITIZE_EACH, json.dumps(inputs), user=wp.admin_user, admin=True))


TEMPLATES = [
    ("intake.json.j2", "intake.json.j2"),
    ("Referral_v2-final.j2", "Referral_v2-final.j2"),
    ("", ""),  # none: the sidecar's own choice
    (" spaced.j2 ", "spaced.j2"),  # surrounding white space is trimmed
    ("intake.json", None),  # None: refused, the old template kept
    ("../intake.j2", None),
    ("sub/intake.j2", None),
    ("in take.j2", None),
    (".j2", None),
    ("intake.J2", None),
    ("intake.j2<script>", None),
    (["intake.j2"], None),
]


OLD_FORM = {"template": "old.j2", "priority": 7, "partner": "old"}  # sanitize_each's form 5


def assert_each_kept_or_refused(key: str, cases: list[tuple[Any, Any]],
                                results: list[dict[str, Any]]) -> None:
    """Each case's value stored as expected, or (expected None) refused: form 5's old
    settings kept and the setting's error shown."""
    for (given, expected), result in zip(cases, results, strict=True):
        if expected is None:
            assert result == {"stored": OLD_FORM, "errors": [f"{key}_5"]}, given
        else:
            assert result == {"stored": {**OLD_FORM, key: expected}, "errors": []}, given


def test_template_names(wp):
    results = sanitize_each(wp, [{"template": t} for t, _ in TEMPLATES])
    assert_each_kept_or_refused("template", TEMPLATES, results)


PRIORITIES = [(0, 0), (100, 100), ("42", 42), (" 8 ", 8), ("", 10), (-1, None), (101, None),
              ("abc", None), ("5.5", None), (3.0, None), (None, None), ("1e2", None),
              ("-0", None), (True, None)]


def test_priorities(wp):
    results = sanitize_each(wp, [{"template": "", "priority": p, "partner": ""}
                                 for p, _ in PRIORITIES])
    for (priority, expected), result in zip(PRIORITIES, results, strict=True):
        if expected is None:  # refused: the old priority kept, an error shown
            assert result == {"stored": {"template": "", "priority": 7, "partner": ""},
                              "errors": ["priority_5"]}, priority
        elif expected == 10:  # back at the defaults, the form is not stored at all
            assert result == {"stored": None, "errors": []}, priority
        else:
            assert result == {"stored": {"template": "", "priority": expected, "partner": ""},
                              "errors": []}, priority


PARTNERS = [
    ("ehr", "ehr"), ("intake-2_b", "intake-2_b"), ("0", "0"), ("a" * 64, "a" * 64),
    ("", ""),  # the default partner
    (" ehr ", "ehr"),  # surrounding white space is trimmed
    ("EHR", None),  # None: refused, the old partner kept
    ("-ehr", None), ("_ehr", None), ("a" * 65, None), ("e hr", None), ("ehr\n", "ehr"),
    ("ehr<script>", None), ("../ehr", None), ("ehr'--", None), (["ehr"], None), (3, None),
]


def test_partner_names(wp):
    """A partner is a name of the sidecar's form (lower-case letters, digits, "_" and "-",
    starting with a letter or digit, at most 64) or '' (the default partner); anything else
    is refused with the old partner kept and an error shown."""
    results = sanitize_each(wp, [{"partner": p} for p, _ in PARTNERS])
    assert_each_kept_or_refused("partner", PARTNERS, results)


def test_sidecar_urls_and_secrets(wp):
    out = wp.php(
        """
        $results = array();
        foreach ( json_decode( $snippet_args[0], true ) as $input ) {
            delete_option( FormRelay_Settings::SECRET_OPTION );
            $clean     = FormRelay_Settings::sanitize( $input );
            $results[] = array( $clean['sidecar_url'], FormRelay_Settings::stored_secret(),
                wp_list_pluck( get_settings_errors( 'formrelay_bridge_settings' ), 'code' ) );
            $GLOBALS['wp_settings_errors'] = array();
        }
        echo wp_json_encode( $results );
        """,
        json.dumps([
            {"sidecar_url": "http://web:8787/"},
            {"sidecar_url": "https://sidecar.example/formrelay"},
            {"sidecar_url": ""},
            {"sidecar_url": "ftp://web:8787"},
            {"sidecar_url": "javascript:alert(1)"},
            {"sidecar_url": "http://user:pw@web:8787"},
            {"sidecar_url": "http://web:8787/?x=1"},
            {"sidecar_url": "web:8787"},
            {"shared_secret": "0123456789abcdef"},
            {"shared_secret": "too-short"},
            {"shared_secret": "0123456789abcdef\n"},
        ]),
        user=wp.admin_user,
        admin=True,
    )
    assert json.loads(out) == [
        ["http://web:8787", "", []],
        ["https://sidecar.example/formrelay", "", []],
        ["", "", []],
        ["", "", ["sidecar_url"]],
        ["", "", ["sidecar_url"]],
        ["", "", ["sidecar_url"]],
        ["", "", ["sidecar_url"]],
        ["", "", ["sidecar_url"]],
        ["", "0123456789abcdef", []],
        ["", "", ["shared_secret"]],
        ["", "", ["shared_secret"]],
    ]


def test_a_damaged_option_still_captures_every_form(wp):
    out = wp.php(
        """
        update_option( 'formrelay_bridge_settings', 'garbage' );
        $a = array(
            FormRelay_Settings::form_selected( 3 ), FormRelay_Settings::form_priority( 3 ),
        );
        remove_all_filters( 'sanitize_option_formrelay_bridge_settings' );
        update_option(
            'formrelay_bridge_settings', array( 'forms' => 'some', 'form_settings' => 1 )
        );
        $a[] = FormRelay_Settings::form_selected( 3 );
        echo wp_json_encode( $a );
        """
    )
    assert json.loads(out) == [True, 10, True]


# ------------------------------------------------------- nonce and capability
def test_saving_without_the_nonce_is_refused(wp, admin):
    update_settings(wp, shared_secret=SECRET)
    page = get_page(admin, wp)
    fields = form_fields(page)
    assert fields["option_page"] == "formrelay_bridge" and fields["_wpnonce"]

    for bad in ({"_wpnonce": ""}, {"_wpnonce": "0123456789"}):
        data = {**fields, **bad, f"{OPTION}[shared_secret]": "attacker-secret-0123456789"}
        resp = admin.post(f"{wp.url}/wp-admin/options.php", data=data, allow_redirects=False,
                          timeout=30)
        assert resp.status_code == 403, resp.status_code
        assert "The link you followed has expired" in resp.text
    assert stored_secret(wp) == SECRET


def test_saving_needs_manage_options(wp, admin):
    wp.php(
        "if ( ! get_user_by( 'login', 'ed' ) ) { wp_insert_user( array( 'user_login' => 'ed',"
        " 'user_pass' => 'editor-pass-1', 'user_email' => 'ed@example.com',"
        " 'role' => 'editor' ) ); }"
    )
    update_settings(wp, shared_secret=SECRET)
    editor = login(wp, "ed", "editor-pass-1")

    resp = editor.get(settings_page_url(wp), timeout=30)
    assert resp.status_code == 403
    assert 'name="formrelay_bridge_settings' not in resp.text

    # Even with the admin's form fields (nonce and all), an editor cannot save.
    data = {**form_fields(get_page(admin, wp)),
            f"{OPTION}[shared_secret]": "attacker-secret-0123456789"}
    resp = editor.post(f"{wp.url}/wp-admin/options.php", data=data, allow_redirects=False,
                       timeout=30)
    assert resp.status_code == 403
    assert stored_secret(wp) == SECRET


# ------------------------------------------------------- wp-config constants
def test_wp_config_constants_win_and_lock_the_inputs(wordpress):
    """The shared session site defines both constants (the secret full of quotes)."""
    session = login(wordpress, wordpress.admin_user, wordpress.admin_password)
    try:
        out = wordpress.php(
            """
            update_option( 'formrelay_bridge_settings', array(
                'sidecar_url' => 'http://option.example:9', 'shared_secret' => $snippet_args[0],
            ) );
            echo wp_json_encode( array(
                FormRelay_Settings::sidecar_url(), FormRelay_Settings::shared_secret(),
                FormRelay_Settings::url_from_constant(), FormRelay_Settings::secret_from_constant(),
            ) );
            """,
            SECRET,
        )
        assert json.loads(out) == [SIDECAR_URL, SHARED_SECRET, True, True]

        page = get_page(session, wordpress)
    finally:
        wordpress.php(
            "delete_option( 'formrelay_bridge_settings' ); FormRelay_Settings::activate();"
        )

    assert page.count("Set in wp-config.php") == 2
    assert "FORMRELAY_SIDECAR_URL" in page and "FORMRELAY_SHARED_SECRET" in page
    url_input = input_tag(page, f"{OPTION}[sidecar_url]")
    assert "disabled" in url_input and f'value="{SIDECAR_URL}"' in url_input
    secret_input = re.search(r'<input[^>]*id="formrelay_shared_secret"[^>]*>', page).group(0)
    assert "disabled" in secret_input and "name=" not in secret_input
    assert_secret_absent(page, SHARED_SECRET)
    assert_secret_absent(page, SECRET)
    for part in SHARED_SECRET.split("\n"):
        assert_secret_absent(page, part)


# ------------------------------------------------------------------ uninstall
UNINSTALL = """
require_once ABSPATH . 'wp-admin/includes/plugin.php';
uninstall_plugin( $snippet_args[0] );  // includes uninstall.php; deletes no files
wp_cache_flush();
global $wpdb;
$like = $wpdb->esc_like( $wpdb->prefix . 'formrelay_' ) . '%';
echo wp_json_encode( array(
    'tables'  => $wpdb->get_col( $wpdb->prepare( 'SHOW TABLES LIKE %s', $like ) ),
    'options' => $wpdb->get_col( $wpdb->prepare(
        "SELECT option_name FROM {$wpdb->options} WHERE option_name LIKE %s ORDER BY option_name",
        $wpdb->esc_like( 'formrelay_' ) . '%'
    ) ),
) );
"""


def test_uninstall_removes_data_only_when_asked(make_wordpress):
    wp = make_wordpress(constants={}, plugins=[(BRIDGE_SLUG, BRIDGE_SOURCE)])
    prefix = wp.table_prefix
    # Activation stored the defaults, autoloaded: reading them costs no query.
    with wp.db() as conn:
        cur = conn.cursor()
        cur.execute(f"SELECT autoload FROM `{prefix}options` WHERE option_name = %s", (OPTION,))
        assert cur.fetchall() == [("yes",)]
    assert stored_settings(wp) == {"sidecar_url": "", "forms": "all",
                                   "form_settings": [], "remove_data_on_uninstall": False,
                                   "seal_public_key": ""}
    all_tables = sorted(f"{prefix}formrelay_{t}"
                        for t in ("alerts", "counts", "documents", "incidents", "jobs", "log",
                                  "meta", "nonces", "workers"))
    update_settings(wp, shared_secret=SECRET)
    with wp.db() as conn:
        conn.cursor().execute(
            f"INSERT INTO `{prefix}formrelay_jobs` (reference, form_id, snapshot, created_at,"
            " updated_at) VALUES ('wpforms:1:1', 1, '{}', NOW(3), NOW(3))")

    kept = json.loads(wp.php(UNINSTALL, PLUGIN_FILE, user=wp.admin_user, admin=True))

    assert sorted(kept["tables"]) == all_tables
    assert kept["options"] == ["formrelay_bridge_secret", "formrelay_bridge_settings",
                               "formrelay_schema_version"]
    with wp.db() as conn:
        cur = conn.cursor()
        cur.execute(f"SELECT COUNT(*) FROM `{prefix}formrelay_jobs`")
        assert cur.fetchone()[0] == 1

    update_settings(wp, remove_data_on_uninstall=True)
    gone = json.loads(wp.php(UNINSTALL, PLUGIN_FILE, user=wp.admin_user, admin=True))

    assert gone == {"tables": [], "options": []}
    # WordPress's own tables are untouched.
    with wp.db() as conn:
        cur = conn.cursor()
        cur.execute(f"SELECT COUNT(*) FROM `{prefix}options` WHERE option_name = 'siteurl'")
        assert cur.fetchone()[0] == 1


def test_uninstall_php_does_nothing_when_loaded_directly(bridge_site):
    out = bridge_site.php(
        "include WP_PLUGIN_DIR . '/formrelay-bridge/uninstall.php'; echo 'still here';"
    )
    # Without WP_UNINSTALL_PLUGIN it exits at once: the echo never runs.
    assert out == ""
