"""``SiteConfig``: what a site is before it runs: its validated settings and its paths.

:class:`~devstack.wordpress.site.LocalWordPress` adds what it does (up, down,
PHP snippets, plugins); this part only checks and stores the arguments.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

from .database import DatabaseServer
from .layout import DEFAULT_VAR_DIR, DEFAULT_WP_SOURCE
from .php import PHPValue

_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_DB_NAME_RE = re.compile(r"^[A-Za-z0-9_]{1,64}$")
_PREFIX_RE = re.compile(r"^[A-Za-z0-9_]{1,20}$")
_CONST_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

PluginSpec = str | os.PathLike[str] | tuple[str, str | os.PathLike[str]]


def default_dir(name: str) -> Path:
    """Where a site called ``name`` lives unless told otherwise."""
    return DEFAULT_VAR_DIR / f"wp-{name}"


class SiteConfig:
    """The settings of a throwaway WordPress site, its paths, and its run state (none yet)."""

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
        self.db_name = db_name or f"fr_wp_{secrets.token_hex(5)}"
        if not _DB_NAME_RE.match(self.db_name):
            raise ValueError(f"invalid database name {self.db_name!r}")
        if not _PREFIX_RE.match(table_prefix):
            raise ValueError(f"invalid table prefix {table_prefix!r}")
        if plugin_mode not in ("symlink", "copy"):
            raise ValueError("plugin_mode must be 'symlink' or 'copy'")
        self.constants: dict[str, PHPValue] = dict(constants or {})
        for const in self.constants:
            if not _CONST_RE.match(const):
                raise ValueError(f"invalid PHP constant name {const!r}")
        self.table_prefix = table_prefix
        self.db_host = db_host
        self.db_port = int(db_port)
        self.db_user = db_user
        self.db_password = db_password
        self.plugin_specs = list(plugins)
        self.plugin_mode = plugin_mode
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

        self.dir = Path(dir).resolve() if dir else default_dir(self.name)
        self.docroot = self.dir / "htdocs"
        self.wp_content_dir = self.docroot / "wp-content"
        self.plugins_dir = self.wp_content_dir / "plugins"
        self.uploads_dir = self.wp_content_dir / "uploads"
        self.server_log = self.dir / "server.log"
        self.debug_log = self.dir / "debug.log"
        self.mail_log = self.dir / "mail.log"  # one JSON object a line (capture_mail)
        self._runner_path = self.dir / "run" / "wp-run.php"
        self._router_path = self.dir / "router.php"

        # Run state: filled in by up(), or by from_state() for a site another process started.
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

    @property
    def db_host_port(self) -> str:
        """The database address as WordPress's ``DB_HOST`` and ``WORDPRESS_DB_HOST`` take it."""
        return f"{self.db_host}:{self.db_port}"

    @property
    def _db_server(self) -> DatabaseServer:
        return DatabaseServer(self.db_host, self.db_port, self.db_user, self.db_password)
