"""devstack.wordpress.LocalWordPress: a real WordPress served by php -S on a fresh database."""

from __future__ import annotations

import json
import socket

import pytest
import requests

from devstack.wordpress import LocalWordPress, PHPError, WordPressError, process_group_alive
from tests.wordpress.conftest import (
    BRIDGE_FILE,
    SHARED_SECRET,
    SIDECAR_URL,
    server_connection,
    site,
)

pytestmark = [pytest.mark.wordpress, pytest.mark.db]


def database_exists(name: str) -> bool:
    with server_connection() as conn:
        cur = conn.cursor()
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (name,)
        )
        return cur.fetchone()[0] == 1


def port_answers(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_front_page_is_served_by_the_theme(wordpress):
    resp = requests.get(wordpress.url + "/", timeout=30)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert "<title>FormRelay Dev" in resp.text
    assert "wp-content/themes/twentytwentythree" in resp.text or "wp-block" in resp.text


def test_rest_index_answers_on_plain_and_pretty_routes(wordpress):
    plain = requests.get(wordpress.url + "/?rest_route=/", timeout=30)
    assert plain.status_code == 200
    assert plain.headers["content-type"].startswith("application/json")
    index = plain.json()
    assert index["name"] == "FormRelay Dev"
    assert index["url"] == wordpress.url
    assert "wp/v2" in index["namespaces"]

    pretty = requests.get(wordpress.url + "/wp-json/", timeout=30)
    assert pretty.status_code == 200
    assert pretty.json()["namespaces"] == index["namespaces"]


def test_static_files_are_served(wordpress):
    resp = requests.get(wordpress.url + "/wp-includes/css/dashicons.min.css", timeout=30)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/css")
    assert requests.get(wordpress.url + "/no-such-page-xyz/", timeout=30).status_code == 404


def test_admin_user_exists_and_can_log_in(wordpress):
    prefix = wordpress.table_prefix
    with wordpress.db() as conn:
        cur = conn.cursor()
        cur.execute(
            f"SELECT ID, user_email FROM `{prefix}users` WHERE user_login = %s",
            (wordpress.admin_user,),
        )
        rows = cur.fetchall()
    assert len(rows) == 1
    assert rows[0][1] == wordpress.admin_email

    out = wordpress.php(
        """
        $user = wp_authenticate( $snippet_args[0], $snippet_args[1] );
        $bad  = wp_authenticate( $snippet_args[0], 'not-the-password' );
        echo wp_json_encode( array(
            'id'    => is_wp_error( $user ) ? $user->get_error_code() : $user->ID,
            'admin' => ! is_wp_error( $user ) && user_can( $user, 'manage_options' ),
            'bad'   => is_wp_error( $bad ),
        ) );
        """,
        wordpress.admin_user,
        wordpress.admin_password,
    )
    assert json.loads(out) == {"id": rows[0][0], "admin": True, "bad": True}


def test_bridge_plugin_is_active_and_loaded(wordpress):
    assert wordpress.active_plugins == [BRIDGE_FILE]
    out = wordpress.php(
        """
        require_once ABSPATH . 'wp-admin/includes/plugin.php';
        echo wp_json_encode( array(
            'active'  => get_option( 'active_plugins' ),
            'is'      => is_plugin_active( $snippet_args[0] ),
            'version' => defined( 'FORMRELAY_BRIDGE_VERSION' ) ? FORMRELAY_BRIDGE_VERSION : null,
            'name'    => get_plugin_data( WP_PLUGIN_DIR . '/' . $snippet_args[0] )['Name'],
        ) );
        """,
        BRIDGE_FILE,
    )
    state = json.loads(out)
    assert state["active"] == [BRIDGE_FILE]
    assert state["is"] is True
    assert state["version"] == "0.1.0"
    assert state["name"] == "FormRelay Bridge"


def test_wp_config_has_the_callers_constants_and_dev_settings(wordpress):
    out = wordpress.php(
        """
        echo wp_json_encode( array(
            'url'      => FORMRELAY_SIDECAR_URL,
            'secret'   => FORMRELAY_SHARED_SECRET,
            'debug'    => WP_DEBUG,
            'display'  => WP_DEBUG_DISPLAY,
            'log'      => WP_DEBUG_LOG,
            'cron'     => DISABLE_WP_CRON,
            'fs'       => FS_METHOD,
            'home'     => home_url(),
            'prefix'   => $GLOBALS['wpdb']->prefix,
            'db'       => DB_NAME,
            'abspath'  => ABSPATH,
            'uploads'  => wp_upload_dir()['basedir'],
        ) );
        """
    )
    got = json.loads(out)
    assert got["url"] == SIDECAR_URL
    assert got["secret"] == SHARED_SECRET
    assert (got["debug"], got["display"], got["cron"], got["fs"]) == (True, False, True, "direct")
    assert got["log"] == str(wordpress.debug_log)
    assert got["home"] == wordpress.url
    assert got["prefix"] == wordpress.table_prefix
    assert got["db"] == wordpress.db_name
    # The site's own copy, not Debian's /usr/share/wordpress (and its wp-config.php).
    assert got["abspath"] == str(wordpress.docroot) + "/"
    assert got["uploads"] == str(wordpress.uploads_dir)


def test_php_helper_reports_errors(wordpress):
    with pytest.raises(PHPError) as caught:
        wordpress.php("throw new RuntimeException( 'boom from the snippet' );")
    assert caught.value.returncode != 0
    assert "boom from the snippet" in caught.value.stderr
    proc = wordpress.php_run("exit( 3 );", check=False)
    assert proc.returncode == 3


def test_mail_is_captured_not_sent(wordpress):
    before = len(wordpress.sent_mail())
    assert wordpress.php("var_export( wp_mail( 'x@example.com', 'Hello', 'Body' ) );") == "true"
    mails = wordpress.sent_mail()
    assert len(mails) == before + 1
    assert (mails[-1]["to"], mails[-1]["subject"]) == ("x@example.com", "Hello")


def test_down_stops_the_server_and_removes_database_and_dir():
    wp = site().up()
    try:
        pid, port, db_name, site_dir = wp.pid, wp.port, wp.db_name, wp.dir
        assert pid is not None and port is not None
        assert database_exists(db_name)
        assert site_dir.is_dir()
        assert port_answers(port)
        assert wp.timings["up"] < 30, wp.timings
    finally:
        wp.down()
    assert not database_exists(db_name)
    assert not site_dir.exists()
    assert not port_answers(port)
    assert not process_group_alive(pid)  # neither the server nor a php -S worker is left
    wp.down()  # idempotent


def test_down_with_keep_leaves_database_and_dir():
    wp = site(keep=True).up()
    try:
        wp.down()
        assert not wp.is_running()
        assert database_exists(wp.db_name)
        assert (wp.docroot / "wp-config.php").is_file()
    finally:
        wp.keep = False
        LocalWordPress.from_state(wp.dir).down()
    assert not database_exists(wp.db_name)
    assert not wp.dir.exists()


def test_an_existing_database_is_never_touched(scratch_database):
    name = scratch_database()
    with server_connection(name) as conn:
        conn.cursor().execute("CREATE TABLE keepme (id INT PRIMARY KEY)")
        conn.cursor().execute("INSERT INTO keepme VALUES (1)")
    wp = site(db_name=name, artifacts_dir=None)  # failing is the expected outcome here
    with pytest.raises(WordPressError, match="already exists"):
        wp.up()
    wp.down()
    assert not wp.dir.exists()
    with server_connection(name) as conn:
        cur = conn.cursor()
        cur.execute("SELECT id FROM keepme")
        assert cur.fetchall() == [(1,)]


def test_plugin_activation_failure_is_reported(make_wordpress, tmp_path):
    broken = tmp_path / "broken-plugin"
    broken.mkdir()
    (broken / "broken-plugin.php").write_text(
        "<?php\n/**\n * Plugin Name: Broken\n */\n"
        "register_activation_hook( __FILE__, function () {\n"
        "    wp_die( 'cannot activate: reason 42' );\n"
        "} );\n",
        encoding="utf-8",
    )
    wp = make_wordpress()
    with pytest.raises(WordPressError, match="reason 42"):
        wp.activate_plugin(broken)
    out = wp.php("echo wp_json_encode( get_option( 'active_plugins' ) );")
    assert json.loads(out) == []
