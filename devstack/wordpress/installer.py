"""WordPress's own installers: the site's (install.php) and plugins' (activate_plugin()).

Both run exactly as for a person clicking through wp-admin, so activation
hooks and their failures behave as they would in production.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from .errors import WordPressError
from .layout import REPO_ROOT, place_plugin, plugin_main_file

if TYPE_CHECKING:
    from .site import LocalWordPress

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$", re.IGNORECASE)

_CONFIGURE_PHP = r"""<?php
global $wp_rewrite;
$structure = $snippet_args[0];
if ( '' !== $structure ) {
	$wp_rewrite->set_permalink_structure( $structure );
}
flush_rewrite_rules( false );
echo 'ok';
"""

# Prints one JSON line {"active": bool, "error": str|null} last.
_ACTIVATE_PHP = r"""<?php
require_once ABSPATH . 'wp-admin/includes/plugin.php';
$plugin_file = $snippet_args[0];
// wp_die() in an activation hook: report its message instead of an HTML page.
add_filter(
	'wp_die_handler',
	function () {
		return function ( $message, $title = '', $args = array() ) {
			if ( is_wp_error( $message ) ) {
				$message = $message->get_error_message();
			}
			$text = wp_strip_all_tags( (string) $title ) . ': ';
			$text .= wp_strip_all_tags( (string) $message );
			$text = trim( html_entity_decode( $text, ENT_QUOTES, 'UTF-8' ), ': ' );
			while ( ob_get_level() > 0 ) {
				ob_end_clean();
			}
			$json = wp_json_encode( array( 'active' => false, 'error' => 'wp_die: ' . $text ) );
			echo "\n" . $json . "\n";
			exit( 3 );
		};
	}
);
$result = activate_plugin( $plugin_file, '', false, false );
if ( is_wp_error( $result ) ) {
	$data  = $result->get_error_data();
	$error = $result->get_error_code() . ': ' . $result->get_error_message();
	if ( is_string( $data ) && '' !== $data ) {
		$error .= ' Output: ' . substr( $data, 0, 2000 );
	}
	echo "\n" . wp_json_encode( array( 'active' => false, 'error' => $error ) ) . "\n";
	exit( 2 );
}
wp_cache_delete( 'alloptions', 'options' );
$active = in_array( $plugin_file, (array) get_option( 'active_plugins', array() ), true );
$error  = $active ? null : 'not in active_plugins after activation';
echo "\n" . wp_json_encode( array( 'active' => $active, 'error' => $error ) ) . "\n";
exit( $active ? 0 : 4 );
"""


def install_site(wp: LocalWordPress) -> None:
    """Run install.php step 2 over HTTP, then check the database agrees it worked."""
    resp = requests.post(
        f"{wp.url}/wp-admin/install.php?step=2",
        data={
            "weblog_title": wp.title,
            "user_name": wp.admin_user,
            "admin_password": wp.admin_password,
            "admin_password2": wp.admin_password,
            "pw_weak": "1",
            "admin_email": wp.admin_email,
            "blog_public": "0",
            "language": "",
        },
        timeout=120,
        allow_redirects=False,
    )
    if resp.status_code != 200 or "Success!" not in resp.text:
        page = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", resp.text)).strip()
        raise WordPressError(f"WordPress installer failed (HTTP {resp.status_code}): {page[:1500]}")
    p = wp.table_prefix
    with wp.db() as conn:
        cur = conn.cursor()
        cur.execute(f"SELECT option_value FROM `{p}options` WHERE option_name = 'siteurl'")
        row = cur.fetchone()
        cur.execute(f"SELECT COUNT(*) FROM `{p}users` WHERE user_login = %s", (wp.admin_user,))
        users = cur.fetchone()
    if not row or row[0] != wp.url:
        raise WordPressError(f"installer said success but siteurl is {row!r}, not {wp.url!r}")
    if not users or users[0] != 1:
        raise WordPressError(f"installer said success but user {wp.admin_user!r} is missing")


def configure_site(wp: LocalWordPress) -> None:
    """Set the permalink structure and write the rewrite rules."""
    out = wp.php(_CONFIGURE_PHP, wp.permalink_structure)
    if out.strip() != "ok":
        raise WordPressError(f"configuring the site failed: {out[-2000:]}")


def activate_plugin(
    wp: LocalWordPress, source: str | os.PathLike[str], slug: str | None, mode: str
) -> str:
    """See :meth:`LocalWordPress.activate_plugin`."""
    src = Path(source)
    if not src.is_absolute():
        # Relative to the working directory, else to the repository.
        src = src.resolve() if src.is_dir() else REPO_ROOT / src
    if not src.is_dir():
        raise WordPressError(f"plugin source {src} is not a directory")
    main = plugin_main_file(src)
    # Default folder: the main file's name, as the plugin is installed in
    # production (wp_bridge_plugin/formrelay-bridge.php -> formrelay-bridge/).
    slug = slug or Path(main).stem
    if not SLUG_RE.match(slug):
        raise ValueError(f"invalid plugin slug {slug!r}")
    place_plugin(src, wp.plugins_dir / slug, mode)
    plugin_file = f"{slug}/{main}"
    proc = wp.php_run(_ACTIVATE_PHP, plugin_file, user=wp.admin_user, admin=True, check=False)
    result: dict[str, Any] = {}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                result = json.loads(line)
                break
    if proc.returncode != 0 or not result.get("active"):
        raise WordPressError(
            f"activating plugin {plugin_file} failed (exit {proc.returncode}): "
            f"{result.get('error') or '(no message)'}\n--- stderr ---\n{proc.stderr[-4000:]}"
            f"\n--- stdout ---\n{proc.stdout[-2000:]}"
        )
    return plugin_file
