"""A throwaway local WordPress without Docker.

Debian's ``wordpress`` package (``/usr/share/wordpress``) is laid into a scratch
directory (hard links, so it takes ~0.1 s), given its own ``wp-config.php`` and
``wp-content``, a fresh MariaDB database, and served by ``php -S`` on a free
loopback port. WordPress is installed through its own installer
(``/wp-admin/install.php?step=2``) and plugins are activated with WordPress's
``activate_plugin()`` from a PHP CLI script, so activation hooks run exactly as
they do when an admin clicks "Activate".

Python::

    with LocalWordPress(plugins=[("formrelay-bridge", "wp_bridge_plugin")]) as wp:
        requests.get(wp.url + "/?rest_route=/")
        wp.php("echo get_option('siteurl');")

Shell::

    python -m devstack.wordpress up --plugin formrelay-bridge=wp_bridge_plugin
    python -m devstack.wordpress down --dir var/wp-<name>

Why not symlink the core files: PHP resolves symlinks in ``__FILE__``/``__DIR__``,
so a symlinked ``wp-load.php`` would load Debian's own
``/usr/share/wordpress/wp-config.php`` (which wants ``/etc/wordpress/config-*.php``).
Hard links keep each site's ``ABSPATH`` its own directory.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import mysql.connector
import requests

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_WP_SOURCE = Path("/usr/share/wordpress")
DEFAULT_VAR_DIR = REPO_ROOT / "var"
STATE_FILE = "devstack.json"

# Top-level entries of Debian's package that a site must not share:
#  wp-config.php  Debian's master config: includes /etc/wordpress/config-<host>.php
#  wp-content     each site gets its own (plugins, themes, uploads)
#  .htaccess      a link to /etc/wordpress/htaccess; meaningless for php -S
_SKIP_TOP = frozenset({"wp-config.php", "wp-content", ".htaccess"})

_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_DB_NAME_RE = re.compile(r"^[A-Za-z0-9_]{1,64}$")
_PREFIX_RE = re.compile(r"^[A-Za-z0-9_]{1,20}$")
_CONST_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$", re.IGNORECASE)

PHPValue = str | int | float | bool | None
PluginSpec = str | os.PathLike[str] | tuple[str, str | os.PathLike[str]]


class WordPressError(RuntimeError):
    """The local WordPress could not be brought up, driven or taken down."""


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


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, max_bytes: int = 4000) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _read_from(path: Path, offset: int, max_bytes: int = 8000) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except OSError:
        return ""
    text = data.decode("utf-8", "replace")
    return text if len(text) <= max_bytes else "…" + text[-max_bytes:]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _plugin_main_file(source: Path) -> str:
    """The file name of the PHP file in ``source`` that carries a ``Plugin Name:`` header."""
    header = re.compile(r"^[ \t/*#@]*Plugin Name:", re.MULTILINE | re.IGNORECASE)
    for php_file in sorted(source.glob("*.php")):
        with php_file.open("rb") as fh:
            head = fh.read(8192).decode("utf-8", "replace")
        if header.search(head):
            return php_file.name
    raise WordPressError(f"no PHP file with a 'Plugin Name:' header in {source}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]
        return state != b"Z"
    except (OSError, IndexError):
        return True


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
            with open(f"/proc/{entry}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != b"Z":
            return True
    return False


class LocalWordPress:
    """A throwaway WordPress site: files in ``dir``, database ``db_name``, served at ``url``.

    Use as a context manager (``up()`` on enter, ``down()`` on exit) or call
    ``up()``/``down()`` yourself. ``down()`` is idempotent and only removes the
    database and directory this instance created.
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        dir: str | os.PathLike[str] | None = None,
        db_name: str | None = None,
        table_prefix: str = "wp_",
        db_host: str = "127.0.0.1",
        db_port: int = 3306,
        db_user: str = "root",
        db_password: str = "",
        plugins: Iterable[PluginSpec] = (),
        plugin_mode: str = "symlink",
        constants: Mapping[str, PHPValue] | None = None,
        admin_user: str = "admin",
        admin_password: str | None = None,
        admin_email: str = "admin@example.com",
        title: str = "FormRelay Dev",
        permalink_structure: str = "/%postname%/",
        theme: str = "twentytwentythree",
        port: int | None = None,
        workers: int = 4,
        php_ini: Mapping[str, str] | None = None,
        wp_source: str | os.PathLike[str] = DEFAULT_WP_SOURCE,
        php_binary: str = "php",
        capture_mail: bool = True,
        keep: bool = False,
        artifacts_dir: str | os.PathLike[str] | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        self.name = name or secrets.token_hex(4)
        if not _NAME_RE.match(self.name):
            raise ValueError(f"invalid site name {self.name!r}")
        self.dir = Path(dir).resolve() if dir else DEFAULT_VAR_DIR / f"wp-{self.name}"
        self.docroot = self.dir / "htdocs"
        self.db_name = db_name or f"fr_wp_{secrets.token_hex(5)}"
        if not _DB_NAME_RE.match(self.db_name):
            raise ValueError(f"invalid database name {self.db_name!r}")
        if not _PREFIX_RE.match(table_prefix):
            raise ValueError(f"invalid table prefix {table_prefix!r}")
        self.table_prefix = table_prefix
        self.db_host = db_host
        self.db_port = int(db_port)
        self.db_user = db_user
        self.db_password = db_password
        self.plugin_specs = list(plugins)
        if plugin_mode not in ("symlink", "copy"):
            raise ValueError("plugin_mode must be 'symlink' or 'copy'")
        self.plugin_mode = plugin_mode
        self.constants: dict[str, PHPValue] = dict(constants or {})
        for const in self.constants:
            if not _CONST_RE.match(const):
                raise ValueError(f"invalid PHP constant name {const!r}")
        self.admin_user = admin_user
        self.admin_password = admin_password or secrets.token_urlsafe(16)
        self.admin_email = admin_email
        self.title = title
        self.permalink_structure = permalink_structure
        self.theme = theme
        self.requested_port = port
        self.workers = max(1, int(workers))
        self.php_ini = {
            "memory_limit": "256M",
            "upload_max_filesize": "64M",
            "post_max_size": "64M",
            **(php_ini or {}),
        }
        self.wp_source = Path(wp_source)
        self.php_binary = php_binary
        self.capture_mail = capture_mail
        self.keep = keep
        self.artifacts_dir = Path(artifacts_dir) if artifacts_dir else None
        self.start_timeout = start_timeout

        self.host = "127.0.0.1"
        self.port: int | None = None
        self.url = ""
        self.pid: int | None = None
        self.active_plugins: list[str] = []
        self.timings: dict[str, float] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._token = secrets.token_hex(16)
        self._db_created = False
        self._dir_created = False

    # ----------------------------------------------------------------- paths
    @property
    def wp_content_dir(self) -> Path:
        return self.docroot / "wp-content"

    @property
    def plugins_dir(self) -> Path:
        return self.wp_content_dir / "plugins"

    @property
    def uploads_dir(self) -> Path:
        return self.wp_content_dir / "uploads"

    @property
    def server_log(self) -> Path:
        return self.dir / "server.log"

    @property
    def debug_log(self) -> Path:
        return self.dir / "debug.log"

    @property
    def mail_log(self) -> Path:
        """Mail WordPress sent, one JSON object a line (``capture_mail=True``)."""
        return self.dir / "mail.log"

    def sent_mail(self) -> list[dict[str, Any]]:
        """The mails captured so far (to, subject, message, headers, time)."""
        if not self.mail_log.is_file():
            return []
        lines = self.mail_log.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    @property
    def db_host_port(self) -> str:
        """The database address as WordPress's ``DB_HOST`` and ``WORDPRESS_DB_HOST`` take it."""
        return f"{self.db_host}:{self.db_port}"

    # ------------------------------------------------------------ lifecycle
    def __enter__(self) -> LocalWordPress:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()

    def up(self) -> LocalWordPress:
        """Create files and database, serve, install WordPress, activate plugins."""
        started = time.monotonic()
        try:
            self._step("layout", self._lay_out)
            self._step("database", self._create_database)
            self._step("server", self._start_server)
            self._step("config", self._write_config)
            self._step("install", self._install)
            self._step("settings", self._configure)
            for spec in self.plugin_specs:
                slug, source = self._parse_plugin_spec(spec)
                self._step(f"activate:{slug}", lambda s=slug, p=source: self.activate_plugin(p, s))
            self._write_state()
        except BaseException as exc:
            detail = self._failure_detail()
            if self.artifacts_dir:
                with contextlib.suppress(Exception):
                    self.save_artifacts(self.artifacts_dir)
            with contextlib.suppress(Exception):
                self.down()
            if isinstance(exc, WordPressError) and detail:
                raise WordPressError(f"{exc}\n{detail}") from exc
            raise
        self.timings["up"] = time.monotonic() - started
        return self

    def down(self) -> None:
        """Stop the server (and its workers), drop the database, remove the directory.

        With ``keep=True`` the database and directory stay (for a post-mortem);
        the server is always stopped. Safe to call more than once.
        """
        self._stop_server()
        if self.keep:
            return
        if self._db_created:
            conn = self._connect()
            try:
                cur = conn.cursor()
                cur.execute(f"DROP DATABASE IF EXISTS `{self.db_name}`")
            finally:
                conn.close()
            self._db_created = False
        if self._dir_created:
            shutil.rmtree(self.dir, ignore_errors=True)
            if self.dir.exists():
                shutil.rmtree(self.dir)  # raise the real error
            self._dir_created = False

    def is_running(self) -> bool:
        return self.pid is not None and _pid_alive(self.pid)

    def info(self) -> dict[str, Any]:
        """What a person or another tool needs to use the site (printed by the CLI)."""
        return {
            "name": self.name,
            "url": self.url,
            "admin_url": f"{self.url}/wp-admin/" if self.url else "",
            "admin_user": self.admin_user,
            "admin_password": self.admin_password,
            "admin_email": self.admin_email,
            "db_name": self.db_name,
            "db_host": self.db_host_port,
            "db_user": self.db_user,
            "table_prefix": self.table_prefix,
            "dir": str(self.dir),
            "docroot": str(self.docroot),
            "uploads_dir": str(self.uploads_dir),
            "server_log": str(self.server_log),
            "debug_log": str(self.debug_log),
            "mail_log": str(self.mail_log),
            "pid": self.pid,
            "port": self.port,
            "active_plugins": list(self.active_plugins),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }

    # ------------------------------------------------------------- helpers
    @contextlib.contextmanager
    def db(self) -> Iterator[Any]:
        """A mysql-connector connection (autocommit) to the site's database."""
        conn = self._connect(self.db_name)
        try:
            yield conn
        finally:
            conn.close()

    def php(
        self,
        code: str,
        *args: str,
        user: str | int | None = None,
        admin: bool = False,
        timeout: float = 60,
        check: bool = True,
    ) -> str:
        """Run PHP ``code`` inside WordPress (PHP CLI + wp-load.php); return its stdout.

        ``code`` may start with ``<?php``; it runs at global scope after
        WordPress has loaded, with ``$snippet_args`` = ``args``. ``user`` (login
        or id) becomes the current user; ``admin=True`` defines ``WP_ADMIN`` and
        loads ``wp-admin/includes/admin.php`` first. PHP errors go to stderr and
        to ``debug.log``; a non-zero exit raises :class:`PHPError` (``check``).
        """
        return self.php_run(
            code, *args, user=user, admin=admin, timeout=timeout, check=check
        ).stdout

    def php_run(
        self,
        code: str,
        *args: str,
        user: str | int | None = None,
        admin: bool = False,
        timeout: float = 60,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Like :meth:`php` but returns the whole CompletedProcess."""
        if not self.url:
            raise WordPressError("the site is not up")
        run_dir = self.dir / "run"
        run_dir.mkdir(exist_ok=True)
        snippet = run_dir / f"snippet-{secrets.token_hex(6)}.php"
        body = code.lstrip()
        if not body.startswith("<?php"):
            body = "<?php\n" + body
        snippet.write_text(body + "\n", encoding="utf-8")
        log_offset = _size(self.debug_log)
        cmd = [
            self.php_binary,
            "-d",
            "display_errors=stderr",
            *self._ini_args(),
            str(self._runner_path),
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
                cwd=self.docroot,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        finally:
            snippet.unlink(missing_ok=True)
        if check and proc.returncode != 0:
            raise PHPError(
                f"PHP snippet exited {proc.returncode}\n--- stderr ---\n{proc.stderr[-4000:]}"
                f"\n--- stdout ---\n{proc.stdout[-2000:]}"
                f"\n--- new debug.log lines ---\n{_read_from(self.debug_log, log_offset)}",
                proc.returncode,
                proc.stdout,
                proc.stderr,
            )
        return proc

    def activate_plugin(
        self, source: str | os.PathLike[str], slug: str | None = None, mode: str | None = None
    ) -> str:
        """Put the plugin in ``source`` into wp-content/plugins/<slug> and activate it.

        ``slug`` defaults to the name of the file with the ``Plugin Name:``
        header; ``mode`` is ``symlink`` (live edits) or ``copy``.

        Returns the plugin file (``slug/main.php``). Raises :class:`WordPressError`
        with WordPress's own message when activation fails (``WP_Error``,
        ``wp_die()`` in an activation hook, a fatal error, unexpected output).
        """
        src = Path(source)
        if not src.is_absolute():
            # Relative to the working directory, else to the repository.
            src = src.resolve() if src.is_dir() else REPO_ROOT / src
        if not src.is_dir():
            raise WordPressError(f"plugin source {src} is not a directory")
        main = _plugin_main_file(src)
        # Default folder: the main file's name, as the plugin is installed in
        # production (wp_bridge_plugin/formrelay-bridge.php -> formrelay-bridge/).
        slug = slug or Path(main).stem
        if not _SLUG_RE.match(slug):
            raise ValueError(f"invalid plugin slug {slug!r}")
        target = self.plugins_dir / slug
        if target.is_symlink() or target.exists():
            if target.is_symlink():
                target.unlink()
            else:
                shutil.rmtree(target)
        if (mode or self.plugin_mode) == "symlink":
            target.symlink_to(src.resolve(), target_is_directory=True)
        else:
            shutil.copytree(src, target, symlinks=False)
        plugin_file = f"{slug}/{main}"
        proc = self.php_run(
            _ACTIVATE_PHP, plugin_file, user=self.admin_user, admin=True, check=False
        )
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
        if plugin_file not in self.active_plugins:
            self.active_plugins.append(plugin_file)
        return plugin_file

    def save_artifacts(self, dest: str | os.PathLike[str]) -> Path:
        """Copy the logs and wp-config.php to ``dest``/<name>/ (for CI failures)."""
        out = Path(dest) / f"wp-{self.name}"
        out.mkdir(parents=True, exist_ok=True)
        for src in (
            self.server_log,
            self.debug_log,
            self.docroot / "wp-config.php",
            self.dir / STATE_FILE,
        ):
            if src.is_file():
                shutil.copy2(src, out / src.name)
        (out / "info.json").write_text(json.dumps(self.info(), indent=2) + "\n", encoding="utf-8")
        return out

    @classmethod
    def from_state(cls, dir: str | os.PathLike[str]) -> LocalWordPress:
        """Reattach to a site started by ``up`` in another process (for ``down``)."""
        state_path = Path(dir).resolve() / STATE_FILE
        try:
            state = json.loads(state_path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise WordPressError(f"no devstack state in {state_path}: {exc}") from exc
        wp = cls(
            state["name"],
            dir=state["dir"],
            db_name=state["db_name"],
            table_prefix=state["table_prefix"],
            db_host=state["db_host"],
            db_port=state["db_port"],
            db_user=state["db_user"],
            db_password=state["db_password"],
            admin_user=state["admin_user"],
            admin_password=state["admin_password"],
            admin_email=state["admin_email"],
        )
        wp.port = state["port"]
        wp.url = state["url"]
        wp.pid = state["pid"]
        wp.active_plugins = list(state.get("active_plugins", []))
        wp._token = state["token"]
        wp._db_created = bool(state["db_created"])
        wp._dir_created = True
        return wp

    # ------------------------------------------------------------ internals
    def _step(self, name: str, fn: Any) -> None:
        t0 = time.monotonic()
        fn()
        self.timings[name] = time.monotonic() - t0

    @property
    def _runner_path(self) -> Path:
        return self.dir / "run" / "wp-run.php"

    def _ini_args(self) -> list[str]:
        out: list[str] = []
        for key, value in self.php_ini.items():
            out += ["-d", f"{key}={value}"]
        return out

    def _connect(self, database: str | None = None) -> Any:
        return mysql.connector.connect(
            host=self.db_host,
            port=self.db_port,
            user=self.db_user,
            password=self.db_password,
            database=database,
            autocommit=True,
            connection_timeout=10,
        )

    def _parse_plugin_spec(self, spec: PluginSpec) -> tuple[str | None, Path]:
        if isinstance(spec, tuple):
            slug, path = spec
            return slug, Path(path)
        return None, Path(spec)

    def _lay_out(self) -> None:
        if not (self.wp_source / "wp-load.php").is_file():
            raise WordPressError(f"{self.wp_source} does not look like WordPress (no wp-load.php)")
        if self.dir.exists() and any(self.dir.iterdir()):
            raise WordPressError(f"{self.dir} exists and is not empty; refusing to reuse it")
        self.dir.mkdir(parents=True, exist_ok=True)
        self._dir_created = True
        self.docroot.mkdir()
        (self.dir / "run").mkdir()

        def link_or_copy(src: str, dst: str) -> str:
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

        for entry in os.scandir(self.wp_source):
            if entry.name in _SKIP_TOP:
                continue
            dst = self.docroot / entry.name
            if entry.is_dir():
                shutil.copytree(entry.path, dst, symlinks=False, copy_function=link_or_copy)
            else:
                link_or_copy(entry.path, str(dst))

        content = self.wp_content_dir
        for sub in ("plugins", "themes", "uploads", "upgrade"):
            (content / sub).mkdir(parents=True)
        silence = "<?php\n// Silence is golden.\n"
        (content / "index.php").write_text(silence, encoding="utf-8")
        (content / "plugins" / "index.php").write_text(silence, encoding="utf-8")
        (content / "themes" / "index.php").write_text(silence, encoding="utf-8")
        if self.capture_mail:
            (content / "mu-plugins").mkdir()
            (content / "mu-plugins" / "devstack-mail.php").write_text(
                _MAIL_PHP.replace("__MAIL_LOG__", php_literal(str(self.mail_log))), encoding="utf-8"
            )
        if self.theme:
            theme_src = self._theme_source(self.theme)
            shutil.copytree(theme_src, content / "themes" / self.theme, copy_function=link_or_copy)

    def _theme_source(self, theme: str) -> Path:
        for base in (
            self.wp_source / "wp-content" / "themes",
            Path("/var/lib/wordpress/wp-content/themes"),
        ):
            candidate = base / theme
            if (candidate / "style.css").exists():
                return candidate.resolve()
        raise WordPressError(f"theme {theme!r} not found in Debian's WordPress package")

    def _create_database(self) -> None:
        conn = self._connect()
        try:
            cur = conn.cursor()
            try:
                cur.execute(
                    f"CREATE DATABASE `{self.db_name}` "
                    "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                )
            except mysql.connector.Error as exc:
                if getattr(exc, "errno", None) == 1007:
                    raise WordPressError(
                        f"database {self.db_name} already exists; refusing to touch it"
                    ) from exc
                raise
            self._db_created = True
        finally:
            conn.close()

    def _start_server(self) -> None:
        router = self.dir / "router.php"
        router.write_text(_ROUTER_PHP.replace("__TOKEN__", self._token), encoding="utf-8")
        env = os.environ.copy()
        if self.workers > 1:
            env["PHP_CLI_SERVER_WORKERS"] = str(self.workers)
        attempts = 1 if self.requested_port else 5
        last_error = ""
        for _ in range(attempts):
            port = self.requested_port or free_port(self.host)
            offset = _size(self.server_log)
            with self.server_log.open("ab") as log:
                proc = subprocess.Popen(
                    [
                        self.php_binary,
                        *self._ini_args(),
                        "-S",
                        f"{self.host}:{port}",
                        "-t",
                        str(self.docroot),
                        str(router),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.docroot,
                    env=env,
                    start_new_session=True,  # its own process group: down() stops the workers too
                )
            self._proc, self.pid, self.port = proc, proc.pid, port
            self.url = f"http://{self.host}:{port}"
            if self._wait_ready(proc):
                return
            last_error = _read_from(self.server_log, offset)
            self._stop_server()
        self.url = ""
        raise WordPressError(f"php -S did not start serving:\n{last_error}")

    def _wait_ready(self, proc: subprocess.Popen[bytes]) -> bool:
        deadline = time.monotonic() + self.start_timeout
        session = requests.Session()
        try:
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    return False
                try:
                    resp = session.get(f"{self.url}/__devstack/ping", timeout=2)
                    # Anything but our token: another server owns this port.
                    return resp.status_code == 200 and resp.text == self._token
                except requests.RequestException:
                    time.sleep(0.02)
            return False
        finally:
            session.close()

    def _stop_server(self) -> None:
        pid = self.pid
        if pid is None:
            return
        proc = self._proc
        if proc is None and not self._is_our_server(pid):
            # Another process has this pid now; ours is long gone.
            self.pid = None
            return
        try:
            if os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGTERM)
            else:
                os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if proc is not None:
                if proc.poll() is not None and not process_group_alive(pid):
                    break
            elif not _pid_alive(pid) and not process_group_alive(pid):
                break
            time.sleep(0.02)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            if proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
        self._proc = None
        self.pid = None

    def _is_our_server(self, pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                argv = fh.read().split(b"\0")
        except OSError:
            return False
        return b"-S" in argv and str(self.dir / "router.php").encode() in argv

    def _write_config(self) -> None:
        constants: dict[str, PHPValue] = {
            "DB_NAME": self.db_name,
            "DB_USER": self.db_user,
            "DB_PASSWORD": self.db_password,
            "DB_HOST": self.db_host_port,
            "DB_CHARSET": "utf8mb4",
            "DB_COLLATE": "",
        }
        for key in (
            "AUTH_KEY",
            "SECURE_AUTH_KEY",
            "LOGGED_IN_KEY",
            "NONCE_KEY",
            "AUTH_SALT",
            "SECURE_AUTH_SALT",
            "LOGGED_IN_SALT",
            "NONCE_SALT",
        ):
            constants[key] = secrets.token_urlsafe(48)
        constants.update(
            {
                "WP_DEBUG": True,
                "WP_DEBUG_LOG": str(self.debug_log),
                "WP_DEBUG_DISPLAY": False,
                "SCRIPT_DEBUG": False,
                "DISABLE_WP_CRON": True,
                "FS_METHOD": "direct",
                "WP_HOME": self.url,
                "WP_SITEURL": self.url,
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
        )
        constants.update(self.constants)
        lines = [
            "<?php",
            f"/* Written by devstack/wordpress.py for the throwaway site {self.name!r}. */",
            "",
        ]
        for const, value in constants.items():
            lines.append(f"define( {php_literal(const)}, {php_literal(value)} );")
        lines += [
            "",
            f"$table_prefix = {php_literal(self.table_prefix)};",
            "",
            "if ( ! defined( 'ABSPATH' ) ) {",
            "\tdefine( 'ABSPATH', __DIR__ . '/' );",
            "}",
            "require_once ABSPATH . 'wp-settings.php';",
            "",
        ]
        (self.docroot / "wp-config.php").write_text("\n".join(lines), encoding="utf-8")
        self._runner_path.write_text(
            _RUNNER_PHP.replace("__HOST__", php_literal(f"{self.host}:{self.port}"))
            .replace("__SERVER_NAME__", php_literal(self.host))
            .replace("__PORT__", php_literal(str(self.port)))
            .replace("__WP_LOAD__", php_literal(str(self.docroot / "wp-load.php"))),
            encoding="utf-8",
        )

    def _install(self) -> None:
        resp = requests.post(
            f"{self.url}/wp-admin/install.php?step=2",
            data={
                "weblog_title": self.title,
                "user_name": self.admin_user,
                "admin_password": self.admin_password,
                "admin_password2": self.admin_password,
                "pw_weak": "1",
                "admin_email": self.admin_email,
                "blog_public": "0",
                "language": "",
            },
            timeout=120,
            allow_redirects=False,
        )
        page = re.sub(r"<[^>]+>", " ", resp.text)
        page = re.sub(r"\s+", " ", page).strip()
        if resp.status_code != 200 or "Success!" not in resp.text:
            raise WordPressError(
                f"WordPress installer failed (HTTP {resp.status_code}): {page[:1500]}"
            )
        p = self.table_prefix
        with self.db() as conn:
            cur = conn.cursor()
            cur.execute(f"SELECT option_value FROM `{p}options` WHERE option_name = 'siteurl'")
            row = cur.fetchone()
            cur.execute(
                f"SELECT COUNT(*) FROM `{p}users` WHERE user_login = %s", (self.admin_user,)
            )
            users = cur.fetchone()
        if not row or row[0] != self.url:
            raise WordPressError(f"installer said success but siteurl is {row!r}, not {self.url!r}")
        if not users or users[0] != 1:
            raise WordPressError(f"installer said success but user {self.admin_user!r} is missing")

    def _configure(self) -> None:
        out = self.php(_CONFIGURE_PHP, self.permalink_structure)
        if out.strip() != "ok":
            raise WordPressError(f"configuring the site failed: {out[-2000:]}")

    def _write_state(self) -> None:
        state = {
            "name": self.name,
            "dir": str(self.dir),
            "db_name": self.db_name,
            "table_prefix": self.table_prefix,
            "db_host": self.db_host,
            "db_port": self.db_port,
            "db_user": self.db_user,
            "db_password": self.db_password,
            "admin_user": self.admin_user,
            "admin_password": self.admin_password,
            "admin_email": self.admin_email,
            "port": self.port,
            "url": self.url,
            "pid": self.pid,
            "token": self._token,
            "db_created": self._db_created,
            "active_plugins": self.active_plugins,
        }
        path = self.dir / STATE_FILE
        path.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
        path.chmod(0o600)

    def _failure_detail(self) -> str:
        parts = []
        server = _tail(self.server_log, 3000)
        if server:
            parts.append(f"--- {self.server_log} (tail) ---\n{server}")
        debug = _tail(self.debug_log, 3000)
        if debug:
            parts.append(f"--- {self.debug_log} (tail) ---\n{debug}")
        return "\n".join(parts)


# Router for `php -S`: real files (and directories with an index.php) are
# served by the built-in server itself; every other path goes to WordPress's
# front controller, so pretty permalinks and /wp-json/ work like on Apache.
_ROUTER_PHP = r"""<?php
// Router for PHP's built-in server; written by devstack/wordpress.py.
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

# There is no sendmail: wp_mail() appends each message to mail.log instead.
_MAIL_PHP = r"""<?php
/**
 * Plugin Name: devstack mail capture
 * Description: wp_mail() appends JSON lines to the site's mail.log (devstack/wordpress.py).
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

# Runs a snippet inside WordPress from the PHP CLI.
# argv: wp-run.php SNIPPET USER(login|id|'') ADMIN(0|1) [ARGS...]
_RUNNER_PHP = r"""<?php
// Runs a PHP snippet inside this WordPress; written by devstack/wordpress.py.
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

_CONFIGURE_PHP = r"""<?php
global $wp_rewrite;
$structure = $snippet_args[0];
if ( '' !== $structure ) {
	$wp_rewrite->set_permalink_structure( $structure );
}
flush_rewrite_rules( false );
echo 'ok';
"""

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


# ------------------------------------------------------------------- CLI
def _parse_define(text: str, as_json: bool) -> tuple[str, PHPValue]:
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    if not as_json:
        return name, value
    parsed = json.loads(value)
    if not isinstance(parsed, (str, int, float, bool)) and parsed is not None:
        raise argparse.ArgumentTypeError(f"{name}: only scalar JSON values are allowed")
    return name, parsed


def _parse_plugin_arg(text: str) -> PluginSpec:
    slug, sep, path = text.partition("=")
    if sep and _SLUG_RE.match(slug) and "/" not in slug:
        return (slug, path)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.wordpress", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="create, serve and install a site; print JSON")
    up.add_argument("--name", help="site name (default: random); dir defaults to var/wp-<name>")
    up.add_argument("--dir", help="site directory (must be empty or absent)")
    up.add_argument("--db-name", help="database to create (default fr_wp_<random>); must not exist")
    up.add_argument("--table-prefix", default="wp_")
    up.add_argument("--db-host", default="127.0.0.1")
    up.add_argument("--db-port", type=int, default=3306)
    up.add_argument("--db-user", default="root")
    up.add_argument("--db-password", default="")
    up.add_argument("--port", type=int, help="HTTP port (default: a free one)")
    up.add_argument("--admin-user", default="admin")
    up.add_argument("--admin-password", help="default: random")
    up.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="[SLUG=]PATH",
        help="plugin source directory to activate (repeatable)",
    )
    up.add_argument("--plugin-mode", choices=("symlink", "copy"), default="symlink")
    up.add_argument(
        "--define",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="string constant for wp-config.php",
    )
    up.add_argument(
        "--define-json",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help='typed constant (true, 3, null, "s")',
    )
    up.add_argument(
        "--permalinks", default="/%postname%/", help="permalink structure ('' for plain)"
    )
    up.add_argument(
        "--foreground",
        action="store_true",
        help="stay in the foreground; Ctrl-C takes the site down",
    )

    down = sub.add_parser(
        "down", help="stop a site started by `up`, drop its database, remove its dir"
    )
    where = down.add_mutually_exclusive_group(required=True)
    where.add_argument("--dir")
    where.add_argument("--name")
    down.add_argument(
        "--keep", action="store_true", help="only stop the server; keep database and files"
    )

    args = parser.parse_args(argv)
    if args.command == "up":
        constants = dict(_parse_define(d, False) for d in args.define)
        constants.update(_parse_define(d, True) for d in args.define_json)
        wp = LocalWordPress(
            args.name,
            dir=args.dir,
            db_name=args.db_name,
            table_prefix=args.table_prefix,
            db_host=args.db_host,
            db_port=args.db_port,
            db_user=args.db_user,
            db_password=args.db_password,
            port=args.port,
            admin_user=args.admin_user,
            admin_password=args.admin_password,
            plugins=[_parse_plugin_arg(p) for p in args.plugin],
            plugin_mode=args.plugin_mode,
            constants=constants,
            permalink_structure=args.permalinks,
        )
        try:
            wp.up()
        except WordPressError as exc:
            print(f"devstack: {exc}", file=sys.stderr)
            return 1
        print(json.dumps(wp.info(), indent=2), flush=True)
        if args.foreground:
            try:
                while wp.is_running():
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
            finally:
                wp.down()
        else:
            # The server belongs to its own session and outlives this process.
            wp._proc = None
        return 0

    site_dir = Path(args.dir) if args.dir else DEFAULT_VAR_DIR / f"wp-{args.name}"
    wp = LocalWordPress.from_state(site_dir)
    wp.keep = args.keep
    wp.down()
    print(
        json.dumps({"down": wp.name, "dir": str(wp.dir), "db_name": wp.db_name, "kept": args.keep})
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
