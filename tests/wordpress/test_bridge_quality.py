"""The plugin's own hygiene: PHP 8.2 lint, guards, readme, and no PHP notices under WP_DEBUG.

WordPress 6.1 itself emits deprecations on PHP 8.2 (e.g. Requests' return
types): those stay in debug.log and are not counted; only reports that name
one of the plugin's files are. One site walks through activation, every
capture path, the notify, the settings page and uninstall (without removal).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from devstack.wordpress.logs import read_log
from tests.wordpress.bridge_fixtures import (
    PDF,
    PNG,
    BlackholeSidecar,
    RecordingSidecar,
    SilentSidecar,
    Submission,
    capture,
    closed_port,
    form_fields,
    jobs,
    login,
    make_form,
    media_upload,
    plugin_problems,
    settings_page_url,
    update_settings,
    upload,
)
from tests.wordpress.conftest import BRIDGE_SOURCE

pytestmark = [pytest.mark.wordpress, pytest.mark.db]

PHP_FILES = sorted(BRIDGE_SOURCE.rglob("*.php"))
EXPECTED_FILES = {
    "formrelay-bridge.php",
    "uninstall.php",
    "includes/class-formrelay-schema.php",
    "includes/class-formrelay-settings.php",
    "includes/class-formrelay-capture.php",
    "includes/class-formrelay-notify.php",
    "admin/class-formrelay-admin.php",
}
PROBE_DIR = "probe/plugins/formrelay-bridge"


def test_the_plugin_has_its_files():
    assert {str(p.relative_to(BRIDGE_SOURCE)) for p in PHP_FILES} >= EXPECTED_FILES
    assert (BRIDGE_SOURCE / "readme.txt").is_file()


@pytest.mark.parametrize("path", PHP_FILES, ids=lambda p: str(p.relative_to(BRIDGE_SOURCE)))
def test_php_lint(path: Path):
    proc = subprocess.run(["php", "-l", str(path)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No syntax errors detected" in proc.stdout


@pytest.mark.parametrize("path", PHP_FILES, ids=lambda p: str(p.relative_to(BRIDGE_SOURCE)))
def test_every_file_refuses_direct_access(path: Path):
    text = path.read_text(encoding="utf-8")
    guard = ("defined( 'WP_UNINSTALL_PLUGIN' ) || exit;" if path.name == "uninstall.php"
             else "defined( 'ABSPATH' ) || exit;")
    code = re.sub(r"/\*.*?\*/", "", text, flags=re.S)  # the file comment
    first = next(line for line in code.splitlines()[1:] if line.strip())
    assert first == guard, f"{path.name}: first statement is {first!r}"


def test_sql_is_prepared_for_wordpress_6_1():
    for path in PHP_FILES:
        text = path.read_text(encoding="utf-8")
        assert "%i" not in text, f"{path.name}: %i needs WordPress 6.2"
        for call in re.findall(r"\$wpdb->(?:query|get_var|get_col|get_row|get_results)\((.*)",
                               text):
            if "DROP TABLE" in call or "$statement" in call:  # DDL of the plugin's own tables
                continue
            assert "prepare(" in call or call.strip() == "", f"{path.name}: {call}"


def test_readme_matches_the_plugin_header():
    readme = (BRIDGE_SOURCE / "readme.txt").read_text(encoding="utf-8")
    main = (BRIDGE_SOURCE / "formrelay-bridge.php").read_text(encoding="utf-8")
    version = re.search(r"^ \* Version:\s+(\S+)", main, re.M).group(1)
    assert readme.startswith("=== FormRelay Bridge ===")
    assert re.search(rf"^Stable tag: {re.escape(version)}$", readme, re.M)
    assert f"define( 'FORMRELAY_BRIDGE_VERSION', '{version}' );" in main
    assert re.search(r"^Requires at least: 6\.1$", readme, re.M)
    assert re.search(r"^Requires PHP: 8\.0$", readme, re.M)
    assert re.search(r"^License: GPLv2 or later$", readme, re.M)
    assert re.search(r"^ \* License:\s+GPL-2\.0-or-later$", main, re.M)
    for section in ("== Description ==", "== Installation ==", "== Frequently Asked Questions ==",
                    "== Changelog =="):
        assert section in readme, section


# ------------------------------------------------------------- under WP_DEBUG
def test_the_problem_filter_sees_a_warning_from_a_plugin_path(bridge_site):
    """plugin_problems() is not blind: a real PHP warning from a plugin-like path is found."""
    probe = bridge_site.dir / PROBE_DIR / "probe.php"
    probe.parent.mkdir(parents=True)
    probe.write_text("<?php\nreturn $formrelay_undefined_probe;\n", encoding="utf-8")
    offset = bridge_site.debug_log.stat().st_size
    run = bridge_site.php_run(f"include '{probe}';")
    found = plugin_problems(read_log(bridge_site.debug_log, offset)) + plugin_problems(run.stderr)
    assert any("Undefined variable $formrelay_undefined_probe" in line for line in found), found


def test_no_php_notices_from_the_plugin(bridge_site):
    """Activation (during the site's set-up), every capture path, notify, settings, uninstall."""
    wp = bridge_site
    stderr: list[str] = []

    def run(*subs, setup: str = "") -> None:
        result = capture(wp, *subs, setup=setup)
        assert result.stdout == "captured"
        stderr.append(result.stderr)

    form = make_form(wp)
    modern = [upload(wp, form, "Referral.pdf", PDF), upload(wp, form, "scan.png", PNG)]
    classic = upload(wp, form, "card.png", PNG)
    media = media_upload(wp, "letter.pdf", PDF)

    # Capture without notify: every shape of submission.
    run(Submission.basic(form, 1).with_modern_files(4, modern).with_classic_file(5, classic)
        .with_modern_files(7, [media]))
    run(Submission.basic(form, 2).with_modern_files(4, []).with_classic_file(5, None))
    run(Submission.basic(form, 0))  # Lite
    run(Submission.basic(form, 1))  # duplicate
    gone = upload(wp, form, "gone.pdf", PDF)
    (wp.uploads_dir / "wpforms" / form.folder / gone["file"]).unlink()
    run(Submission.basic(form, 3).with_modern_files(4, [gone]))
    run(Submission.basic(form, 4).with_classic_file(5, classic),
        setup="add_filter( 'wpforms_upload_root', fn() => '/nonexistent' );")
    weird = Submission(form, 5, {"1": {"type": "file-upload", "value_raw": [None, "x", {}]},
                                 "2": "not a field", "3": {"type": "file-upload", "file": "../x"}})
    run(weird)
    update_settings(wp, forms=[form.id + 1000])
    run(Submission.basic(form, 6))  # not selected
    update_settings(wp, forms="all", form_settings={str(form.id): {"template": "x.j2",
                                                                   "priority": 2}})
    run(Submission.basic(form, 7))
    table = f"{wp.table_prefix}formrelay_jobs"
    with wp.db() as conn:
        conn.cursor().execute(f"RENAME TABLE `{table}` TO `{table}_away`")
    try:
        run(Submission.basic(form, 8))  # database failure
    finally:
        with wp.db() as conn:
            conn.cursor().execute(f"RENAME TABLE `{table}_away` TO `{table}`")

    # Notify: answered, refused, hung, unreachable.
    update_settings(wp, shared_secret="quality-secret-0123456789")
    recording, silent, blackhole = RecordingSidecar(), SilentSidecar(), BlackholeSidecar()
    try:
        for number, url in enumerate((recording.url, closed_port(), silent.url, blackhole.url)):
            update_settings(wp, sidecar_url=url)
            run(Submission.basic(form, 20 + number), Submission.basic(form, 0))
        assert len(recording.drain()) == 2
    finally:
        recording.close()
        silent.close()
        blackhole.close()

    # The settings page: render, save with errors, save cleanly.
    session = login(wp, wp.admin_user, wp.admin_password)
    page = session.get(settings_page_url(wp), timeout=30)
    assert page.status_code == 200
    data = {**form_fields(page.text), "formrelay_bridge_settings[shared_secret]": "short",
            f"formrelay_bridge_settings[form_settings][{form.id}][priority]": "x",
            "formrelay_bridge_settings[forms_mode]": "selected"}
    saved = session.post(f"{wp.url}/wp-admin/options.php", data=data, timeout=30)
    assert saved.status_code == 200 and "The shared secret must be" in saved.text
    assert session.get(f"{wp.url}/wp-admin/plugins.php", timeout=30).status_code == 200
    # Uninstall with the data kept (the site lives on for the other tests of this module).
    stderr.append(wp.php_run(
        "require_once ABSPATH . 'wp-admin/includes/plugin.php';"
        " uninstall_plugin( 'formrelay-bridge/formrelay-bridge.php' );",
        user=wp.admin_user, admin=True).stderr)

    assert len(jobs(wp)) >= 10
    log = read_log(wp.debug_log, 0, max_bytes=50_000_000)
    server_log = read_log(wp.server_log, 0, max_bytes=50_000_000)
    assert "PHP Deprecated" in log  # WordPress 6.1's own, on PHP 8.2: logging works
    # (The filter's own self-test above leaves its probe's warning in this site's log.)
    assert [line for line in plugin_problems(log) if PROBE_DIR not in line] == []
    assert plugin_problems(server_log) == []
    assert plugin_problems("\n".join(stderr)) == []
