"""A site's files: Debian's WordPress core, its own wp-content, wp-config.php, plugins.

Why not symlink the core files: PHP resolves symlinks in ``__FILE__``/``__DIR__``,
so a symlinked ``wp-load.php`` would load Debian's own
``/usr/share/wordpress/wp-config.php`` (which wants ``/etc/wordpress/config-*.php``).
Hard links keep each site's ``ABSPATH`` its own directory.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from collections.abc import Mapping
from pathlib import Path

from .errors import WordPressError
from .php import PHPValue, php_literal

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_WP_SOURCE = Path("/usr/share/wordpress")
DEFAULT_VAR_DIR = REPO_ROOT / "var"

# Top-level entries of Debian's package that a site must not share:
#  wp-config.php  Debian's master config: includes /etc/wordpress/config-<host>.php
#  wp-content     each site gets its own (plugins, themes, uploads)
#  .htaccess      a link to /etc/wordpress/htaccess; meaningless for php -S
_SKIP_TOP = frozenset({"wp-config.php", "wp-content", ".htaccess"})

_SILENCE = "<?php\n// Silence is golden.\n"

# There is no sendmail: wp_mail() appends each message to mail.log instead.
_MAIL_PHP = r"""<?php
/**
 * Plugin Name: devstack mail capture
 * Description: wp_mail() appends JSON lines to the site's mail.log (devstack/wordpress/layout.py).
 */
add_filter(
	'pre_wp_mail',
	function ( $result, $atts ) {
		$line = wp_json_encode(
			array(
				'time'    => gmdate( 'c' ),
				'to'      => $atts['to'],
				'subject' => $atts['subject'],
				'message' => $atts['message'],
				'headers' => $atts['headers'],
			)
		);
		return false !== file_put_contents( __MAIL_LOG__, $line . "\n", FILE_APPEND | LOCK_EX );
	},
	10,
	2
);
"""

_SALTS = (
    "AUTH_KEY",
    "SECURE_AUTH_KEY",
    "LOGGED_IN_KEY",
    "NONCE_KEY",
    "AUTH_SALT",
    "SECURE_AUTH_SALT",
    "LOGGED_IN_SALT",
    "NONCE_SALT",
)

_DEV_SETTINGS: dict[str, PHPValue] = {
    "WP_DEBUG": True,
    "WP_DEBUG_DISPLAY": False,
    "SCRIPT_DEBUG": False,
    "DISABLE_WP_CRON": True,
    "FS_METHOD": "direct",
    "WP_ENVIRONMENT_TYPE": "local",
    # Core files are hard links into Debian's package: never let
    # WordPress rewrite them (updates, the file editor).
    "DISALLOW_FILE_MODS": True,
    "AUTOMATIC_UPDATER_DISABLED": True,
    "WP_AUTO_UPDATE_CORE": False,
    # No calls to api.wordpress.org from a sandbox (they would only
    # time out); loopback and the site's own host stay allowed.
    "WP_HTTP_BLOCK_EXTERNAL": True,
}


def _link_or_copy(src: str, dst: str) -> str:
    real = os.path.realpath(src)
    # Hard-link Debian's files (same inode, no copy); copy anything a
    # package symlink points at outside /usr (e.g. the CA bundle in /etc).
    if real.startswith("/usr/"):
        try:
            os.link(real, dst)
            return dst
        except OSError:
            pass
    shutil.copy2(real, dst)
    return dst


def make_site_dir(wp_source: Path, site_dir: Path) -> None:
    """Create ``site_dir`` for a site from ``wp_source``; it must be empty or absent."""
    if not (wp_source / "wp-load.php").is_file():
        raise WordPressError(f"{wp_source} does not look like WordPress (no wp-load.php)")
    if site_dir.exists() and any(site_dir.iterdir()):
        raise WordPressError(f"{site_dir} exists and is not empty; refusing to reuse it")
    site_dir.mkdir(parents=True, exist_ok=True)


def lay_out(wp_source: Path, docroot: Path, *, theme: str, mail_log: Path | None) -> None:
    """Lay WordPress from ``wp_source`` into the new directory ``docroot``.

    ``theme`` ('' for none) is copied from Debian's package; with ``mail_log``
    a must-use plugin appends every wp_mail() to it instead of sending.
    """
    docroot.mkdir()
    for entry in os.scandir(wp_source):
        if entry.name in _SKIP_TOP:
            continue
        dst = docroot / entry.name
        if entry.is_dir():
            shutil.copytree(entry.path, dst, symlinks=False, copy_function=_link_or_copy)
        else:
            _link_or_copy(entry.path, str(dst))

    content = docroot / "wp-content"
    for sub in ("plugins", "themes", "uploads", "upgrade"):
        (content / sub).mkdir(parents=True)
    for silent in (content, content / "plugins", content / "themes"):
        (silent / "index.php").write_text(_SILENCE, encoding="utf-8")
    if mail_log is not None:
        (content / "mu-plugins").mkdir()
        (content / "mu-plugins" / "devstack-mail.php").write_text(
            _MAIL_PHP.replace("__MAIL_LOG__", php_literal(str(mail_log))), encoding="utf-8"
        )
    if theme:
        shutil.copytree(
            _theme_source(wp_source, theme),
            content / "themes" / theme,
            copy_function=_link_or_copy,
        )


def _theme_source(wp_source: Path, theme: str) -> Path:
    for base in (wp_source / "wp-content" / "themes", Path("/var/lib/wordpress/wp-content/themes")):
        candidate = base / theme
        if (candidate / "style.css").exists():
            return candidate.resolve()
    raise WordPressError(f"theme {theme!r} not found in Debian's WordPress package")


def write_config(
    docroot: Path,
    *,
    site_name: str,
    table_prefix: str,
    database: Mapping[str, str],
    url: str,
    debug_log: Path,
    constants: Mapping[str, PHPValue],
) -> None:
    """Write ``docroot``/wp-config.php: ``database`` (DB_NAME, ...), fresh salts,
    development settings, then the caller's ``constants`` (which win)."""
    defines: dict[str, PHPValue] = {**database, "DB_CHARSET": "utf8mb4", "DB_COLLATE": ""}
    defines.update((key, secrets.token_urlsafe(48)) for key in _SALTS)
    defines.update(_DEV_SETTINGS)
    defines.update(WP_DEBUG_LOG=str(debug_log), WP_HOME=url, WP_SITEURL=url)
    defines.update(constants)
    lines = [
        "<?php",
        f"/* Written by devstack/wordpress for the throwaway site {site_name!r}. */",
        "",
        *(f"define( {php_literal(k)}, {php_literal(v)} );" for k, v in defines.items()),
        "",
        f"$table_prefix = {php_literal(table_prefix)};",
        "",
        "if ( ! defined( 'ABSPATH' ) ) {",
        "\tdefine( 'ABSPATH', __DIR__ . '/' );",
        "}",
        "require_once ABSPATH . 'wp-settings.php';",
        "",
    ]
    (docroot / "wp-config.php").write_text("\n".join(lines), encoding="utf-8")


def plugin_main_file(source: Path) -> str:
    """The file name of the PHP file in ``source`` that carries a ``Plugin Name:`` header."""
    header = re.compile(r"^[ \t/*#@]*Plugin Name:", re.MULTILINE | re.IGNORECASE)
    for php_file in sorted(source.glob("*.php")):
        with php_file.open("rb") as fh:
            head = fh.read(8192).decode("utf-8", "replace")
        if header.search(head):
            return php_file.name
    raise WordPressError(f"no PHP file with a 'Plugin Name:' header in {source}")


def place_plugin(source: Path, target: Path, mode: str) -> None:
    """Put the plugin folder ``source`` at ``target``, replacing what is there.

    ``mode`` ``symlink`` keeps live edits visible; ``copy`` snapshots the files.
    """
    if target.is_symlink():
        target.unlink()
    elif target.exists():
        shutil.rmtree(target)
    if mode == "symlink":
        target.symlink_to(source.resolve(), target_is_directory=True)
    else:
        shutil.copytree(source, target, symlinks=False)
