"""PHP from Python: literals for the PHP we write, and snippets run inside the site.

A snippet runs in the PHP CLI through ``run/wp-run.php``, which fakes just
enough of a web request for ``wp-load.php``, optionally logs a user in and
loads wp-admin, then ``require``s the snippet at global scope.
"""

from __future__ import annotations

import math
import secrets
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from .errors import WordPressError
from .logs import log_size, read_log

PHPValue = str | int | float | bool | None


class PHPError(WordPressError):
    """A PHP snippet run inside WordPress failed."""

    def __init__(self, message: str, returncode: int, stdout: str, stderr: str) -> None:
        super().__init__(message)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


def php_literal(value: PHPValue) -> str:
    """``value`` as a PHP literal (strings single-quoted with PHP's escaping)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write non-finite float {value!r} as a PHP literal")
        return repr(value)
    if isinstance(value, str):
        # In a single-quoted PHP string only \\ and \' are escapes.
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    raise TypeError(f"cannot write {type(value).__name__} as a PHP literal")


def ini_args(php_ini: Mapping[str, str]) -> list[str]:
    """``php_ini`` as ``-d key=value`` arguments for the php binary."""
    return [arg for key, value in php_ini.items() for arg in ("-d", f"{key}={value}")]


# argv: wp-run.php SNIPPET USER(login|id|'') ADMIN(0|1) [ARGS...]
_RUNNER_PHP = r"""<?php
// Runs a PHP snippet inside this WordPress; written by devstack/wordpress/php.py.
$_SERVER['HTTP_HOST']       = __HOST__;
$_SERVER['SERVER_NAME']     = __SERVER_NAME__;
$_SERVER['SERVER_PORT']     = __PORT__;
$_SERVER['REQUEST_URI']     = '/';
$_SERVER['REQUEST_METHOD']  = 'GET';
$_SERVER['SERVER_PROTOCOL'] = 'HTTP/1.1';
$_SERVER['REMOTE_ADDR']     = '127.0.0.1';
$_SERVER['HTTP_USER_AGENT'] = 'devstack-php-cli';
$_SERVER['QUERY_STRING']    = '';
// Fatal errors: PHP's own report on stderr and exit 255, not WordPress's
// "critical error" page on stdout with exit 0.
define( 'WP_DISABLE_FATAL_ERROR_HANDLER', true );
if ( '1' === ( $argv[3] ?? '0' ) ) {
	define( 'WP_ADMIN', true );
}
require __WP_LOAD__;
// wp_debug_mode() turned display_errors off; in the CLI report on stderr.
ini_set( 'display_errors', 'stderr' );
if ( '1' === ( $argv[3] ?? '0' ) ) {
	require_once ABSPATH . 'wp-admin/includes/admin.php';
}
if ( '' !== ( $argv[2] ?? '' ) ) {
	$devstack_user = ctype_digit( $argv[2] )
		? get_user_by( 'id', (int) $argv[2] )
		: get_user_by( 'login', $argv[2] );
	if ( ! $devstack_user ) {
		fwrite( STDERR, 'devstack: no such user: ' . $argv[2] . "\n" );
		exit( 70 );
	}
	wp_set_current_user( $devstack_user->ID );
	unset( $devstack_user );
}
$snippet_args = array_slice( $argv, 4 );
require $argv[1];
"""


def write_runner(path: Path, *, host: str, port: int, wp_load: Path) -> None:
    """Write the snippet runner for a site served at ``host:port``."""
    path.write_text(
        _RUNNER_PHP.replace("__HOST__", php_literal(f"{host}:{port}"))
        .replace("__SERVER_NAME__", php_literal(host))
        .replace("__PORT__", php_literal(str(port)))
        .replace("__WP_LOAD__", php_literal(str(wp_load))),
        encoding="utf-8",
    )


def run_snippet(
    code: str,
    args: Sequence[str],
    *,
    runner: Path,
    php_binary: str,
    php_ini: Mapping[str, str],
    docroot: Path,
    debug_log: Path,
    user: str | int | None,
    admin: bool,
    timeout: float,
    check: bool,
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` through ``runner`` (see :func:`write_runner`); PHPError if ``check`` fails."""
    snippet = runner.parent / f"snippet-{secrets.token_hex(6)}.php"
    body = code.lstrip()
    if not body.startswith("<?php"):
        body = "<?php\n" + body
    snippet.write_text(body + "\n", encoding="utf-8")
    log_offset = log_size(debug_log)
    cmd = [
        php_binary,
        "-d",
        "display_errors=stderr",
        *ini_args(php_ini),
        str(runner),
        str(snippet),
        "" if user is None else str(user),
        "1" if admin else "0",
        *args,
    ]
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=docroot,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    finally:
        snippet.unlink(missing_ok=True)
    if check and proc.returncode != 0:
        raise PHPError(
            f"PHP snippet exited {proc.returncode}\n--- stderr ---\n{proc.stderr[-4000:]}"
            f"\n--- stdout ---\n{proc.stdout[-2000:]}"
            f"\n--- new debug.log lines ---\n{read_log(debug_log, log_offset)}",
            proc.returncode,
            proc.stdout,
            proc.stderr,
        )
    return proc
