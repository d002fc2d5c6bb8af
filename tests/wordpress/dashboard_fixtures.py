"""Fixtures and helpers for the wp-admin dashboard tests (issue 6, docs/dashboard.md).

Import what you use into a test module (``from tests.wordpress.dashboard_fixtures import
dashboard_site``); they build on tests/wordpress/conftest.py and bridge_fixtures.py.

- ``dashboard_site``: one WordPress per test module with the bridge active and no
  FORMRELAY_* constants (tests point the bridge at a sidecar with ``point_at()``),
  an editor ``ed`` (no FormRelay capability), and application passwords for both;
- ``AdminSidecar``: a stand-in for the sidecar's ``/admin/v1/...`` routes over real
  HTTP that records each request and answers what the test sets;
- ``doc_signature()`` / ``assert_signed()``: the signature as docs/dashboard.md defines
  it, recomputed independently of the plugin;
- ``RealSidecar``: ``formrelay web`` from the venv against the site's database;
- ``Rest``: URLs of the plugin's routes, pretty (/wp-json/) or plain (?rest_route=).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import requests

from devstack.wordpress import LocalWordPress, free_port
from tests.conftest import wait_until
from tests.integration.test_cli import formrelay_bin
from tests.wordpress.bridge_fixtures import login, update_settings
from tests.wordpress.conftest import BRIDGE_SLUG, BRIDGE_SOURCE, running_site

NAMESPACE = "formrelay/v1"
EDITOR = "ed"
EDITOR_PASSWORD = "editor-pass-1234"
# Quotes, a backslash, dollars and braces: the option keeps them, the HMAC must too.
SECRET = "dash'board \"secret\" \\ with $dollars {$braces} 0123456789"

# Every route of docs/dashboard.md ("The plugin's side"), as (method, route).
ROUTES: list[tuple[str, str]] = [
    ("GET", "stats"),
    ("GET", "jobs"),
    ("GET", "jobs/7"),
    ("POST", "jobs/7/retry"),
    ("POST", "jobs/7/restart"),
    ("POST", "jobs/7/cancel"),
    ("POST", "jobs/retry"),
    ("POST", "jobs/7/fields"),
    ("GET", "logs"),
    ("POST", "resume"),
    ("GET", "view/overview"),
    ("GET", "view/jobs"),
    ("GET", "view/job"),
    ("GET", "view/logs"),
]


# ------------------------------------------------------------------ the site
@dataclass
class DashboardSite:
    wp: LocalWordPress
    admin_app_password: str
    editor_app_password: str

    @property
    def url(self) -> str:
        return self.wp.url


@pytest.fixture(scope="module")
def dashboard_site(request: pytest.FixtureRequest) -> Iterator[DashboardSite]:
    """A WordPress for one test module: bridge active, an editor, application passwords."""
    with running_site(request, constants={}, plugins=[(BRIDGE_SLUG, BRIDGE_SOURCE)]) as wp:
        make_user(wp, EDITOR, EDITOR_PASSWORD, "editor")
        yield DashboardSite(wp, app_password(wp, wp.admin_user), app_password(wp, EDITOR))


def make_user(wp: LocalWordPress, login_name: str, password: str, role: str) -> int:
    out = wp.php(
        """
        $id = wp_insert_user( array( 'user_login' => $snippet_args[0],
            'user_pass' => $snippet_args[1], 'user_email' => $snippet_args[0] . '@example.com',
            'role' => $snippet_args[2] ) );
        if ( is_wp_error( $id ) ) { fwrite( STDERR, $id->get_error_message() ); exit( 1 ); }
        echo $id;
        """,
        login_name,
        password,
        role,
    )
    return int(out)


def app_password(wp: LocalWordPress, login_name: str) -> str:
    """A new application password of ``login_name``.

    WordPress offers application passwords over plain HTTP only on a 'local'
    environment: devstack's wp-config.php sets WP_ENVIRONMENT_TYPE 'local', so no
    filter is needed (checked here, so a change there fails loudly).
    """
    out = wp.php(
        """
        $user = get_user_by( 'login', $snippet_args[0] );
        if ( ! wp_is_application_passwords_available_for_user( $user ) ) {
            fwrite( STDERR, 'application passwords are not available (environment: '
                . wp_get_environment_type() . ')' );
            exit( 1 );
        }
        $made = WP_Application_Passwords::create_new_application_password(
            $user->ID, array( 'name' => 'pytest ' . wp_generate_password( 6, false ) ) );
        if ( is_wp_error( $made ) ) { fwrite( STDERR, $made->get_error_message() ); exit( 1 ); }
        echo $made[0];
        """,
        login_name,
    )
    return out.strip()


def point_at(wp: LocalWordPress, sidecar_url: str, secret: str = SECRET) -> None:
    """Point the bridge at a sidecar (the settings option; the site has no constants)."""
    stored = update_settings(wp, sidecar_url=sidecar_url, shared_secret=secret)
    assert stored["sidecar_url"] == sidecar_url.rstrip("/"), stored


def set_role_cap(wp: LocalWordPress, role: str, cap: str, grant: bool) -> None:
    wp.php(
        "$r = get_role( $snippet_args[0] ); '1' === $snippet_args[2]"
        " ? $r->add_cap( $snippet_args[1] ) : $r->remove_cap( $snippet_args[1] );",
        role,
        cap,
        "1" if grant else "0",
    )


# ------------------------------------------------------------ queue state
def seed_queue(wp: LocalWordPress, heartbeat_minutes_ago: int | None, waiting: int,
               done: int = 2) -> None:
    """Workers and jobs as the two queries of the unreachable notice read them."""
    p = wp.table_prefix
    with wp.db() as conn:
        cur = conn.cursor()
        cur.execute(f"DELETE FROM {p}formrelay_workers")
        cur.execute(f"DELETE FROM {p}formrelay_jobs")
        if heartbeat_minutes_ago is not None:
            for n, ago in (("a", heartbeat_minutes_ago), ("b", heartbeat_minutes_ago + 30)):
                cur.execute(
                    f"INSERT INTO {p}formrelay_workers (id, host, pid, version, worker_type,"
                    " threads, started_at, last_seen) VALUES (%s, 'h', 1, '0.1.0', 'thread', 4,"
                    " UTC_TIMESTAMP(3), UTC_TIMESTAMP(3) - INTERVAL %s MINUTE)", (f"h:{n}", ago))
        statuses = (["pending", "retrying", "processing"] * waiting)[:waiting]
        statuses += ["completed", "failed", "cancelled"][:done] + ["cancelled"] * (done - 3)
        for i, status in enumerate(statuses):
            cur.execute(
                f"INSERT INTO {p}formrelay_jobs (reference, form_id, status, created_at,"
                " updated_at) VALUES (%s, 1, %s, UTC_TIMESTAMP(3), UTC_TIMESTAMP(3))",
                (f"t:{i}", status))
        # the ended ones counted as the sidecar counts them (migration 0008)
        cur.execute(f"DELETE FROM {p}formrelay_counts")
        cur.execute(f"INSERT INTO {p}formrelay_counts (form_id, status, slot, n)"
                    f" SELECT form_id, status, 0, COUNT(*) FROM {p}formrelay_jobs"
                    " WHERE status IN ('completed', 'failed', 'cancelled')"
                    " GROUP BY form_id, status")


def last_seen(wp: LocalWordPress) -> str:
    """MAX(last_seen) of the workers, as the plugin reports it (UTC ISO 8601, milliseconds)."""
    with wp.db() as conn:
        cur = conn.cursor()
        cur.execute(f"SELECT MAX(last_seen) FROM {wp.table_prefix}formrelay_workers")
        (value,) = cur.fetchone()
    return value.isoformat(timespec="milliseconds")


# ---------------------------------------------------------------- REST URLs
@dataclass(frozen=True)
class Rest:
    """The plugin's REST URLs on a site, pretty (/wp-json/...) or plain (?rest_route=...)."""

    base: str
    plain: bool = False

    def url(self, route: str, **params: Any) -> str:
        path = f"/{NAMESPACE}/{route}"
        if self.plain:
            url = f"{self.base}/?rest_route={path}"
            sep = "&"
        else:
            url = f"{self.base}/wp-json{path}"
            sep = "?"
        if params:
            url += sep + urlencode(params, quote_via=quote)
        return url


def rest_nonce(session: requests.Session, wp: LocalWordPress) -> str:
    """The wp_rest nonce of a logged-in session (WordPress' own admin-ajax action)."""
    resp = session.get(f"{wp.url}/wp-admin/admin-ajax.php", params={"action": "rest-nonce"},
                       timeout=30)
    assert resp.status_code == 200 and resp.text.strip(), resp.text[:500]
    return resp.text.strip()


def cookie_session(wp: LocalWordPress, user: str, password: str) -> tuple[requests.Session, str]:
    """A logged-in session and its REST nonce."""
    session = login(wp, user, password)
    return session, rest_nonce(session, wp)


# ----------------------------------------------------- the stand-in sidecar
@dataclass
class AdminRequest:
    method: str
    target: str  # the request target exactly as sent: path plus '?' and query
    headers: dict[str, str]  # lower-case names
    body: bytes
    at: float

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | dict[str, Any] | list[Any] = b""
    content_type: str = "application/json"
    delay: float = 0.0

    def encoded(self) -> bytes:
        if isinstance(self.body, (dict, list)):
            return json.dumps(self.body).encode()
        return self.body.encode() if isinstance(self.body, str) else self.body


Responder = Callable[[AdminRequest], Reply]


def echo_reply(req: AdminRequest) -> Reply:
    """The default answer: HTML for a view, else JSON that says what was asked."""
    if req.path.startswith("/admin/v1/view/"):
        name = req.path.rsplit("/", 1)[1]
        return Reply(200, f'<div class="formrelay-{name}" data-formrelay-refresh="{name}">'
                          f'<p>view {name}</p></div>', "text/html; charset=utf-8")
    return Reply(200, {"echo": {"method": req.method, "target": req.target}})


class AdminSidecar:
    """Records every request to it and answers with ``responder`` (default ``echo_reply``)."""

    def __init__(self, responder: Responder = echo_reply) -> None:
        self.responder = responder
        self.received: list[AdminRequest] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                req = AdminRequest(self.command, self.path,
                                   {k.lower(): v for k, v in self.headers.items()}, body,
                                   time.time())
                with outer._lock:
                    outer.received.append(req)
                reply = outer.responder(req)
                if reply.delay:
                    time.sleep(reply.delay)
                data = reply.encoded()
                with contextlib.suppress(OSError):
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(data)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(data)
                self.close_connection = True

            do_GET = do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def take(self) -> list[AdminRequest]:
        """The requests received so far; then forget them."""
        with self._lock:
            got, self.received = self.received, []
        return got

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


@pytest.fixture
def admin_sidecar(dashboard_site: DashboardSite) -> Iterator[AdminSidecar]:
    """A recording sidecar the site points at for this test."""
    sidecar = AdminSidecar()
    point_at(dashboard_site.wp, sidecar.url)
    try:
        yield sidecar
    finally:
        sidecar.close()


def doc_signature(secret: str, timestamp: str, nonce: str, method: str, target: str,
                  user: str, body: bytes) -> str:
    """As docs/dashboard.md defines it: ``sha256=`` + hex HMAC-SHA256 with the shared secret
    of the fields ``FR1-admin``, timestamp, nonce, METHOD, path_and_query, user, body, each
    as ``<decimal byte length>:<bytes>\\n``."""
    fields = [b"FR1-admin", timestamp.encode(), nonce.encode(), method.encode(),
              target.encode(), user.encode(), body]
    message = b"".join(b"%d:%s\n" % (len(f), f) for f in fields)
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def assert_signed(req: AdminRequest, user: str, secret: str = SECRET,
                  max_skew: float = 10) -> None:
    """The request carries the doc's headers, and its signature verifies."""
    ts = req.headers.get("x-formrelay-timestamp", "")
    assert ts.isdigit(), req.headers
    assert abs(req.at - int(ts)) <= max_skew, (ts, req.at)
    assert req.headers.get("x-formrelay-user") == user, req.headers
    nonce = req.headers.get("x-formrelay-nonce", "")
    assert re.fullmatch(r"[0-9a-f]{32}", nonce), req.headers
    expected = doc_signature(secret, ts, nonce, req.method, req.target, user, req.body)
    assert hmac.compare_digest(req.headers.get("x-formrelay-signature", ""), expected), (
        f"signature of {req.method} {req.target} does not verify")


# ------------------------------------------------------------ the real sidecar
class RealSidecar:
    """``formrelay web`` against a site's database, on a free port of 127.0.0.1."""

    def __init__(self, wp: LocalWordPress, secret: str, data_dir: Path) -> None:
        self.listen = f"127.0.0.1:{free_port()}"
        self.url = f"http://{self.listen}"
        self.env = {
            "PATH": os.environ["PATH"], "WORDPRESS_DB_HOST": wp.db_host_port,
            "WORDPRESS_DB_USER": wp.db_user, "WORDPRESS_DB_PASSWORD": wp.db_password,
            "WORDPRESS_DB_NAME": wp.db_name, "WORDPRESS_TABLE_PREFIX": wp.table_prefix,
            "FORMRELAY_SHARED_SECRET": secret, "FORMRELAY_LISTEN": self.listen,
            "FORMRELAY_DATA_DIR": str(data_dir),
        }
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> RealSidecar:
        self.proc = subprocess.Popen([formrelay_bin(), "web"], env=self.env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        wait_until(self._healthy, 30, "formrelay web to answer /readyz")
        return self

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            out = self.proc.stdout.read() if self.proc.stdout else ""
            raise AssertionError(f"formrelay web exited {self.proc.returncode}: {out[-2000:]}")
        try:
            return requests.get(f"{self.url}/readyz", timeout=1).ok
        except requests.RequestException:
            return False

    def stop(self) -> str:
        if self.proc is None:
            return ""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        out = self.proc.stdout.read() if self.proc.stdout else ""
        self.proc = None
        return out


@contextlib.contextmanager
def serving_sidecar(wp: LocalWordPress, data_dir: Path) -> Iterator[RealSidecar]:
    """`formrelay web` on the site's database with the plugin pointed at it; stopped after."""
    running = RealSidecar(wp, SECRET, data_dir).start()
    point_at(wp, running.url)
    try:
        yield running
    finally:
        running.stop()


def sidecar_has_admin_api() -> bool:
    """Whether this checkout has the sidecar side of issue 6 (sidecar/admin/: /admin/v1/stats)."""
    return (Path(__file__).resolve().parents[2] / "sidecar" / "admin" / "__init__.py").is_file()


NO_ADMIN_API = ("the sidecar has no admin API yet (sidecar/admin/ with GET /admin/v1/stats, "
                "issue 6's sidecar side, has not landed)")
