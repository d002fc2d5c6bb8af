"""Serving a site with PHP's built-in server (``php -S``) and stopping it again.

The server runs in its own session, so it and its ``PHP_CLI_SERVER_WORKERS``
form one process group that :func:`stop_server` signals as a whole.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

import requests

from .errors import WordPressError
from .logs import log_size, read_log
from .php import ini_args

# Real files (and directories with an index.php) are served by the built-in
# server itself; every other path goes to WordPress's front controller, so
# pretty permalinks and /wp-json/ work like on Apache. /__devstack/ping answers
# the site's token: proof that the port is ours.
_ROUTER_PHP = r"""<?php
// Router for PHP's built-in server; written by devstack/wordpress/server.py.
$devstack_path = parse_url( $_SERVER['REQUEST_URI'] ?? '/', PHP_URL_PATH );
if ( ! is_string( $devstack_path ) || '' === $devstack_path ) {
	$devstack_path = '/';
}
if ( '/__devstack/ping' === $devstack_path ) {
	header( 'Content-Type: text/plain' );
	echo '__TOKEN__';
	return true;
}
$devstack_file = $_SERVER['DOCUMENT_ROOT'] . rawurldecode( $devstack_path );
if ( '/' !== $devstack_path && file_exists( $devstack_file ) ) {
	$devstack_index = rtrim( $devstack_file, '/' ) . '/index.php';
	if ( ! is_dir( $devstack_file ) || file_exists( $devstack_index ) ) {
		return false;
	}
}
$_SERVER['SCRIPT_NAME']     = '/index.php';
$_SERVER['PHP_SELF']        = '/index.php';
$_SERVER['SCRIPT_FILENAME'] = $_SERVER['DOCUMENT_ROOT'] . '/index.php';
unset( $devstack_path, $devstack_file, $devstack_index );
chdir( $_SERVER['DOCUMENT_ROOT'] );
require $_SERVER['DOCUMENT_ROOT'] . '/index.php';
"""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _stat_fields(pid: int | str) -> list[bytes]:
    """The fields of /proc/<pid>/stat after the command name: state, ppid, pgrp, ..."""
    with open(f"/proc/{pid}/stat", "rb") as fh:
        return fh.read().rsplit(b")", 1)[1].split()


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (which kill(pid, 0) would count)."""
    try:
        return _stat_fields(pid)[0] != b"Z"
    except OSError:
        return False


def process_group_alive(pgid: int) -> bool:
    """Whether a live (non-zombie) process is in process group ``pgid``.

    php -S workers outlive their master by a moment as zombies (reaped by
    init), which ``killpg(pgid, 0)`` still counts.
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = _stat_fields(entry)
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != b"Z":
            return True
    return False


def start_server(
    *,
    docroot: Path,
    router: Path,
    token: str,
    log: Path,
    host: str,
    port: int | None,
    php_binary: str,
    php_ini: Mapping[str, str],
    workers: int,
    timeout: float,
) -> tuple[subprocess.Popen[bytes], int]:
    """Serve ``docroot`` on ``host:port`` (a free port if None); return the server and port.

    Waits until the server answers ``token``; a free port another process
    takes meanwhile is retried with a new one (up to 5 times).
    """
    router.write_text(_ROUTER_PHP.replace("__TOKEN__", token), encoding="utf-8")
    env = os.environ.copy()
    if workers > 1:
        env["PHP_CLI_SERVER_WORKERS"] = str(workers)
    last_error = ""
    for _ in range(1 if port else 5):
        use_port = port or free_port(host)
        offset = log_size(log)
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [
                    php_binary,
                    *ini_args(php_ini),
                    "-S",
                    f"{host}:{use_port}",
                    "-t",
                    str(docroot),
                    str(router),
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=docroot,
                env=env,
                start_new_session=True,  # its own process group: stop_server() gets the workers
            )
        try:
            if _wait_ready(proc, f"http://{host}:{use_port}", token, timeout):
                return proc, use_port
        except BaseException:
            stop_server(proc.pid, proc, router)
            raise
        last_error = read_log(log, offset)
        stop_server(proc.pid, proc, router)
    raise WordPressError(f"php -S did not start serving:\n{last_error}")


def _wait_ready(proc: subprocess.Popen[bytes], url: str, token: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    with requests.Session() as session:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            try:
                resp = session.get(f"{url}/__devstack/ping", timeout=2)
                # Anything but our token: another server owns this port.
                return resp.status_code == 200 and resp.text == token
            except requests.RequestException:
                time.sleep(0.02)
    return False


def stop_server(pid: int, proc: subprocess.Popen[bytes] | None, router: Path) -> None:
    """Stop the server ``pid`` and its workers: SIGTERM, then SIGKILL after 5 s.

    Without ``proc`` (a server started by another process) ``pid`` is only
    signalled if it still runs ``router``: the pid may belong to another process now.
    """
    if proc is None and not _serves(pid, router):
        return
    # The server leads its own process group (start_new_session).
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        # poll() reaps our child; the group check covers the leader and the workers.
        if (proc is None or proc.poll() is not None) and not process_group_alive(pid):
            return
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


def _serves(pid: int, router: Path) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = fh.read().split(b"\0")
    except OSError:
        return False
    return b"-S" in argv and str(router).encode() in argv
