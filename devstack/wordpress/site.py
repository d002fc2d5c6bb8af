"""``LocalWordPress``: one throwaway site, from an empty directory to a served install and back."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from . import installer
from .config import PluginSpec, SiteConfig
from .errors import WordPressError
from .layout import lay_out, make_site_dir, write_config
from .logs import read_log
from .php import run_snippet, write_runner
from .server import pid_alive, start_server, stop_server

STATE_FILE = "devstack.json"

# Constructor arguments kept in the state file, so `down` can reattach from another process.
_STATE_ARGS = (
    "dir",
    "db_name",
    "table_prefix",
    "db_host",
    "db_port",
    "db_user",
    "db_password",
    "admin_user",
    "admin_password",
    "admin_email",
)


def _split_spec(spec: PluginSpec) -> tuple[str | None, Path]:
    if isinstance(spec, tuple):
        slug, path = spec
        return slug, Path(path)
    return None, Path(spec)


class LocalWordPress(SiteConfig):
    """A throwaway WordPress site: files in ``dir``, database ``db_name``, served at ``url``.

    Use as a context manager (``up()`` on enter, ``down()`` on exit) or call
    ``up()``/``down()`` yourself. ``down()`` is idempotent and only removes the
    database and directory this instance created.
    """

    def sent_mail(self) -> list[dict[str, Any]]:
        """The mails captured so far (to, subject, message, headers, time)."""
        if not self.mail_log.is_file():
            return []
        lines = self.mail_log.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

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
            self._step("install", partial(installer.install_site, self))
            self._step("settings", partial(installer.configure_site, self))
            for spec in self.plugin_specs:
                slug, source = _split_spec(spec)
                self._step(f"activate:{slug}", partial(self.activate_plugin, source, slug))
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
        if self.pid is not None:
            stop_server(self.pid, self._proc, self._router_path)
        self._proc = self.pid = None
        if self.keep:
            return
        if self._db_created:
            self._db_server.drop(self.db_name)
            self._db_created = False
        if self._dir_created:
            shutil.rmtree(self.dir, ignore_errors=True)
            if self.dir.exists():
                shutil.rmtree(self.dir)  # raise the real error
            self._dir_created = False

    def is_running(self) -> bool:
        return self.pid is not None and pid_alive(self.pid)

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

    # -------------------------------------------------------------- driving
    def db(self) -> contextlib.AbstractContextManager[Any]:
        """A mysql-connector connection (autocommit) to the site's database."""
        return self._db_server.connect(self.db_name)

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
        return run_snippet(
            code,
            args,
            runner=self._runner_path,
            php_binary=self.php_binary,
            php_ini=self.php_ini,
            docroot=self.docroot,
            debug_log=self.debug_log,
            user=user,
            admin=admin,
            timeout=timeout,
            check=check,
        )

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
        plugin_file = installer.activate_plugin(self, source, slug, mode or self.plugin_mode)
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

    # ---------------------------------------------------------------- state
    def _write_state(self) -> None:
        state = {
            "name": self.name,
            **{key: getattr(self, key) for key in _STATE_ARGS},
            "dir": str(self.dir),
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

    @classmethod
    def from_state(cls, dir: str | os.PathLike[str]) -> LocalWordPress:
        """Reattach to a site started by ``up`` in another process (for ``down``)."""
        state_path = Path(dir).resolve() / STATE_FILE
        try:
            state = json.loads(state_path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise WordPressError(f"no devstack state in {state_path}: {exc}") from exc
        wp = cls(state["name"], **{key: state[key] for key in _STATE_ARGS})
        wp.port = state["port"]
        wp.url = state["url"]
        wp.pid = state["pid"]
        wp.active_plugins = list(state.get("active_plugins", []))
        wp._token = state["token"]
        wp._db_created = bool(state["db_created"])
        wp._dir_created = True
        return wp

    # ---------------------------------------------------------------- steps
    def _step(self, name: str, fn: Callable[[], object]) -> None:
        t0 = time.monotonic()
        fn()
        self.timings[name] = time.monotonic() - t0

    def _lay_out(self) -> None:
        make_site_dir(self.wp_source, self.dir)
        self._dir_created = True
        (self.dir / "run").mkdir()
        mail_log = self.mail_log if self.capture_mail else None
        lay_out(self.wp_source, self.docroot, theme=self.theme, mail_log=mail_log)

    def _create_database(self) -> None:
        self._db_server.create(self.db_name)
        self._db_created = True

    def _start_server(self) -> None:
        self._proc, self.port = start_server(
            docroot=self.docroot,
            router=self._router_path,
            token=self._token,
            log=self.server_log,
            host=self.host,
            port=self.requested_port,
            php_binary=self.php_binary,
            php_ini=self.php_ini,
            workers=self.workers,
            timeout=self.start_timeout,
        )
        self.pid = self._proc.pid
        self.url = f"http://{self.host}:{self.port}"

    def _write_config(self) -> None:
        assert self.port is not None, "the server starts before the config is written"
        database = {
            "DB_NAME": self.db_name,
            "DB_USER": self.db_user,
            "DB_PASSWORD": self.db_password,
            "DB_HOST": self.db_host_port,
        }
        write_config(
            self.docroot,
            site_name=self.name,
            table_prefix=self.table_prefix,
            database=database,
            url=self.url,
            debug_log=self.debug_log,
            constants=self.constants,
        )
        wp_load = self.docroot / "wp-load.php"
        write_runner(self._runner_path, host=self.host, port=self.port, wp_load=wp_load)

    def _failure_detail(self) -> str:
        return "\n".join(
            f"--- {log} (tail) ---\n{text}"
            for log in (self.server_log, self.debug_log)
            if (text := read_log(log, 0, 3000))
        )
