"""Activating FormRelay Bridge on a database that already has a schema, or cannot take it.

Re-activation keeps tables, rows and bookkeeping; a newer schema than the
plugin knows is left alone and shown to admins; a failed install stops the
activation with MariaDB's reason, recorded and shown as an error notice.
"""

from __future__ import annotations

import json

import pytest

from tests.wordpress.conftest import (
    BRIDGE_FILE,
    BRIDGE_SLUG,
    BRIDGE_SOURCE,
    NOTICE,
    deactivate_bridge,
    rendered_notices,
    server_connection,
)
from tests.wordpress.schema_snapshot import (
    add_sentinel_rows,
    assert_snapshot_is_the_full_schema,
    assert_unchanged,
    assert_version_recorded,
    known_version,
    meta_rows,
    option,
    schema_snapshot,
    sentinel_counts,
)

pytestmark = [pytest.mark.wordpress, pytest.mark.db]


def test_activating_twice_is_idempotent(make_wordpress):
    wp = make_wordpress(plugins=[(BRIDGE_SLUG, BRIDGE_SOURCE)])
    db, prefix = wp.db_name, wp.table_prefix
    before, meta_before = schema_snapshot(db, prefix), meta_rows(db, prefix)
    assert_snapshot_is_the_full_schema(before)
    add_sentinel_rows(db, prefix)
    # Forget the recorded option so the second activation has to rebuild it.
    wp.php("delete_option( 'formrelay_schema_version' );")
    assert option(db, prefix, "formrelay_schema_version") is None

    deactivate_bridge(wp)
    wp.activate_plugin(BRIDGE_SOURCE, BRIDGE_SLUG)

    assert_unchanged(db, prefix, before, meta_before)
    assert sentinel_counts(db, prefix) == (1, 1, 1)
    assert_version_recorded(db, prefix, known_version())


def test_a_newer_schema_in_the_database_is_left_alone_and_noticed(make_wordpress):
    wp = make_wordpress(plugins=[(BRIDGE_SLUG, BRIDGE_SOURCE)])
    db, prefix = wp.db_name, wp.table_prefix
    newer = known_version() + 1
    assert rendered_notices(wp) == []
    with server_connection(db) as conn:
        conn.cursor().execute(
            f"UPDATE `{prefix}formrelay_meta` SET value = %s WHERE name = 'schema_version'",
            (str(newer),),
        )
    # The sidecar moved ahead while the plugin was active: noticed on the next admin page.
    notices = rendered_notices(wp)
    assert len(notices) == 1 and notices[0][0] == "warning", notices
    assert f"version {newer}" in notices[0][1] and f"({known_version()})" in notices[0][1]

    before, meta_before = schema_snapshot(db, prefix), meta_rows(db, prefix)
    deactivate_bridge(wp)
    wp.activate_plugin(BRIDGE_SOURCE, BRIDGE_SLUG)  # raises if activation failed

    assert_unchanged(db, prefix, before, meta_before)
    assert meta_before[0][1] == str(newer)
    assert_version_recorded(db, prefix, newer)
    assert [n[0] for n in rendered_notices(wp)] == ["warning"]
    # Only for people who can act on it.
    wp.php(
        "wp_insert_user( array( 'user_login' => 'sub', 'user_pass' => 'x-pass-1',"
        " 'user_email' => 'sub@example.com', 'role' => 'subscriber' ) );"
    )
    assert rendered_notices(wp, user="sub") == []


def test_a_failed_install_stops_activation_with_the_reason(make_wordpress):
    wp = make_wordpress()
    db, prefix = wp.db_name, wp.table_prefix
    # A meta table the migration cannot use: CREATE ... IF NOT EXISTS keeps it.
    with server_connection(db) as conn:
        conn.cursor().execute(
            f"CREATE TABLE `{prefix}formrelay_meta` (name VARCHAR(64) PRIMARY KEY)"
        )

    with pytest.raises(Exception, match=r"FormRelay Bridge.*Unknown column 'value'") as caught:
        wp.activate_plugin(BRIDGE_SOURCE, BRIDGE_SLUG)
    assert "activation failed" in str(caught.value)

    out = wp.php("echo wp_json_encode( get_option( 'active_plugins' ) );")
    assert json.loads(out) == []
    error = option(db, prefix, "formrelay_schema_error")
    assert error is not None and "Unknown column 'value'" in error
    # The notice shows it, escaped, wherever the plugin is loaded.
    out = wp.php(
        "include WP_PLUGIN_DIR . '/' . $snippet_args[0]; do_action( 'admin_notices' );",
        BRIDGE_FILE,
        user=wp.admin_user,
        admin=True,
    )
    notices = NOTICE.findall(out)
    assert [n[0] for n in notices] == ["error"]
    assert "Unknown column &#039;value&#039;" in notices[0][1]
