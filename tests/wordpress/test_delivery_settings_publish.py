"""The plugin publishes its delivery settings for the sidecar (formrelay_meta row
`delivery_settings`), and keeps the shared secret out of the autoloaded options.

The cases are tests/fixtures/delivery_settings/*.json, which the sidecar's unit
tests read too: one contract for both sides.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from devstack.wordpress import LocalWordPress
from tests.wordpress.bridge_fixtures import update_settings
from tests.wordpress.conftest import BRIDGE_FILE, BRIDGE_SLUG, BRIDGE_SOURCE, deactivate_bridge

pytestmark = [pytest.mark.wordpress, pytest.mark.db]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "delivery_settings"
CASES = sorted(FIXTURES.glob("*.json"))
SINCE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$")
SECRET = "a-secret-of-sufficient-length-42"


def published(wp: LocalWordPress) -> dict[str, Any] | None:
    with wp.db() as conn:
        cur = conn.cursor()
        cur.execute(f"SELECT value FROM {wp.table_prefix}formrelay_meta"
                    " WHERE name = 'delivery_settings'")
        row = cur.fetchone()
    return json.loads(row[0]) if row else None


def set_published(wp: LocalWordPress, value: str | None) -> None:
    with wp.db() as conn:
        cur = conn.cursor()
        if value is None:
            cur.execute(f"DELETE FROM {wp.table_prefix}formrelay_meta"
                        " WHERE name = 'delivery_settings'")
        else:
            cur.execute(f"UPDATE {wp.table_prefix}formrelay_meta SET value = %s"
                        " WHERE name = 'delivery_settings'", (value,))
        conn.commit()


def options(wp: LocalWordPress, name: str) -> list[tuple[str, str]]:
    """(option_value, autoload) of the option's row(s), straight from wp_options."""
    with wp.db() as conn:
        cur = conn.cursor()
        cur.execute(f"SELECT option_value, autoload FROM {wp.table_prefix}options"
                    " WHERE option_name = %s", (name,))
        return [(str(v), str(a)) for v, a in cur.fetchall()]


def admin_init(wp: LocalWordPress) -> None:
    wp.php("do_action( 'admin_init' );", user=wp.admin_user, admin=True)


def reset(wp: LocalWordPress) -> None:
    wp.php("delete_option( 'formrelay_bridge_settings' ); FormRelay_Settings::activate();")


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_a_settings_save_publishes_the_contract(bridge_site, case):
    spec = json.loads(case.read_text())
    reset(bridge_site)
    update_settings(bridge_site, **spec["option"])
    row = published(bridge_site)
    assert row is not None
    since = row.pop("active_since")
    assert SINCE.match(since)
    chosen = row.pop("selected_since")
    forms = spec["published"]["forms"]
    assert set(chosen) == ({"*"} if forms == "all" else {str(f) for f in forms})
    assert all(SINCE.match(t) and t >= since for t in chosen.values())
    assert row == spec["published"]


def test_a_form_keeps_its_selection_time_and_an_added_one_gets_now(bridge_site):
    reset(bridge_site)
    update_settings(bridge_site, forms=[3])
    first = published(bridge_site)
    assert first is not None
    update_settings(bridge_site, forms=[3, 4])
    both = published(bridge_site)
    assert both is not None
    assert both["selected_since"]["3"] == first["selected_since"]["3"]
    assert both["selected_since"]["4"] >= first["selected_since"]["3"]
    update_settings(bridge_site, forms="all")
    every = published(bridge_site)
    assert every is not None
    assert every["selected_since"]["3"] == first["selected_since"]["3"]
    assert every["selected_since"]["4"] == both["selected_since"]["4"]
    assert every["selected_since"]["*"] >= both["selected_since"]["4"]
    update_settings(bridge_site, forms=[4, 9])  # 3 leaves; 9 was covered by "all"
    again = published(bridge_site)
    assert again is not None
    assert set(again["selected_since"]) == {"4", "9"}
    assert again["selected_since"]["4"] == both["selected_since"]["4"]
    assert again["selected_since"]["9"] == every["selected_since"]["*"]


def test_active_since_survives_saves_and_deactivation_turns_delivery_off(bridge_site):
    reset(bridge_site)
    first = published(bridge_site)
    assert first is not None and first["active"] is True
    update_settings(bridge_site, forms=[3])
    saved = published(bridge_site)
    assert saved is not None and saved["forms"] == [3]
    assert saved["active_since"] == first["active_since"]

    deactivate_bridge(bridge_site)
    try:
        off = published(bridge_site)
        assert off is not None and off["active"] is False and off["forms"] == [3]
    finally:
        bridge_site.activate_plugin(BRIDGE_SOURCE, BRIDGE_SLUG)
    on = published(bridge_site)
    assert on is not None and on["active"] is True
    assert on["active_since"] > first["active_since"]  # the same format sorts as time
    out = bridge_site.php("require_once ABSPATH . 'wp-admin/includes/plugin.php';"
                          " echo is_plugin_active( $snippet_args[0] ) ? 'yes' : 'no';",
                          BRIDGE_FILE)
    assert out == "yes"


def test_admin_init_writes_a_missing_or_stale_row(bridge_site):
    reset(bridge_site)
    update_settings(bridge_site, forms=[5, 6])
    set_published(bridge_site, None)  # a site upgraded from a version that never wrote it
    admin_init(bridge_site)
    row = published(bridge_site)
    assert row is not None and row["forms"] == [5, 6] and row["active"] is True
    set_published(bridge_site, '{"version": 1, "forms": "all"}')
    admin_init(bridge_site)
    again = published(bridge_site)
    assert again is not None and again["forms"] == [5, 6] and SINCE.match(again["active_since"])


def test_deleting_the_option_publishes_the_defaults(bridge_site):
    update_settings(bridge_site, forms=[7])
    bridge_site.php("delete_option( 'formrelay_bridge_settings' );")
    row = published(bridge_site)
    assert row is not None and row["forms"] == "all"


def test_the_secret_has_its_own_option_that_is_not_autoloaded(bridge_site):
    reset(bridge_site)
    update_settings(bridge_site, shared_secret=SECRET)
    assert options(bridge_site, "formrelay_bridge_secret") == [(SECRET, "no")]
    ((settings, autoload),) = options(bridge_site, "formrelay_bridge_settings")
    assert autoload == "yes" and SECRET not in settings and "shared_secret" not in settings
    out = bridge_site.php("echo FormRelay_Settings::shared_secret();")
    assert out == SECRET
    update_settings(bridge_site, shared_secret="another-secret-0123456789")
    assert options(bridge_site, "formrelay_bridge_secret") == [
        ("another-secret-0123456789", "no")]
    update_settings(bridge_site, clear_shared_secret="1")
    assert options(bridge_site, "formrelay_bridge_secret") == []


def test_a_secret_kept_in_the_settings_by_an_older_version_moves_on_admin_init(
        bridge_site):
    reset(bridge_site)
    # What earlier builds stored: the secret inside the autoloaded settings.
    bridge_site.php("""
        global $wpdb;
        $old = array( 'sidecar_url' => 'http://127.0.0.1:9', 'shared_secret' => $snippet_args[0],
                      'forms' => 'all', 'form_settings' => array() );
        $wpdb->update( $wpdb->options, array( 'option_value' => maybe_serialize( $old ) ),
                       array( 'option_name' => 'formrelay_bridge_settings' ) );
        """, SECRET)
    assert bridge_site.php("echo FormRelay_Settings::shared_secret();") == SECRET  # until moved
    admin_init(bridge_site)
    assert options(bridge_site, "formrelay_bridge_secret") == [(SECRET, "no")]
    ((settings, _),) = options(bridge_site, "formrelay_bridge_settings")
    assert SECRET not in settings and "http://127.0.0.1:9" in settings
    assert bridge_site.php("echo FormRelay_Settings::shared_secret();") == SECRET
