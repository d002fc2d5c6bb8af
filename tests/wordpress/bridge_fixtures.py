"""Fixtures and helpers for the FormRelay Bridge tests (capture, notify, settings, quality).

Import the helpers you use into a test module; they work on the sites of
tests/wordpress/conftest.py (``bridge_site``: one WordPress per test module with the
bridge active and no FORMRELAY_* constants; ``wp``: that site reset before each test).

- ``Submission`` builds WPForms' ``wpforms_process_complete`` arguments shaped
  as in /work/shared/wpforms-reference.md, with real files under uploads/;
- ``capture()`` fires the hook inside WordPress and reports how long the
  capture and the shutdown notify took;
- ``RecordingSidecar``, ``SilentSidecar``, ``BlackholeSidecar`` and
  ``closed_port()`` stand in for the sidecar over real TCP.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import secrets
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from devstack import samples
from devstack.wordpress import LocalWordPress
from tests.wordpress.conftest import BRIDGE_SLUG

OPTION = "formrelay_bridge_settings"
PLUGIN_FILE = f"{BRIDGE_SLUG}/formrelay-bridge.php"

# PHP's own reports (notices, warnings, deprecations, errors), as error_log and display write them.
PHP_PROBLEM = re.compile(
    r"PHP (?:Notice|Warning|Deprecated|Strict Standards|Fatal error|Parse error|Recoverable fatal"
    r" error)|^(?:Notice|Warning|Deprecated|Fatal error|Parse error):",
    re.MULTILINE,
)
# Where the plugin's files are, however the site holds them (a symlink resolves
# to wp_bridge_plugin/, a copy stays under plugins/formrelay-bridge/).
PLUGIN_PATH = re.compile(r"wp_bridge_plugin/|plugins/formrelay-bridge/")


def plugin_problems(text: str) -> list[str]:
    """The lines of ``text`` where PHP reports a problem in one of the plugin's files."""
    return [
        line
        for line in text.splitlines()
        if PHP_PROBLEM.search(line) and PLUGIN_PATH.search(line)
    ]


# ------------------------------------------------------------------ the site
def update_settings(wp: LocalWordPress, **values: Any) -> dict[str, Any]:
    """update_option() the given keys (through the plugin's sanitize); the stored result."""
    out = wp.php(
        """
        // Keys left out keep their stored value (the plugin's sanitize merges).
        update_option( 'formrelay_bridge_settings', json_decode( $snippet_args[0], true ) );
        wp_cache_delete( 'alloptions', 'options' );
        echo wp_json_encode( get_option( 'formrelay_bridge_settings' ) );
        """,
        json.dumps(values),
    )
    return json.loads(out)


def stored_settings(wp: LocalWordPress) -> Any:
    """The option as stored (None when absent), read over SQL."""
    out = wp.php(
        "echo wp_json_encode( array( 'v' => get_option( $snippet_args[0], null ) ) );", OPTION
    )
    return json.loads(out)["v"]


def stored_secret(wp: LocalWordPress) -> str:
    """The shared secret stored as an option ('' when none): its own option."""
    out = wp.php("echo wp_json_encode( get_option( $snippet_args[0], '' ) );",
                 "formrelay_bridge_secret")
    return str(json.loads(out))


def jobs(wp: LocalWordPress) -> list[dict[str, Any]]:
    """Every job row, oldest first, the snapshot decoded."""
    with wp.db() as conn:
        cur = conn.cursor(dictionary=True)
        cur.execute(f"SELECT * FROM `{wp.table_prefix}formrelay_jobs` ORDER BY id")
        rows = cur.fetchall()
    for row in rows:
        row["snapshot_text"] = row["snapshot"]
        row["snapshot"] = json.loads(row["snapshot"]) if row["snapshot"] else None
    return rows


# ------------------------------------------------------- forms and their files
@dataclass
class Form:
    """A WPForms form: a published `wpforms` post, and its upload folder."""

    id: int
    created: str  # post_date, as WPForms' form_data['created']
    title: str

    @property
    def folder(self) -> str:
        """wpforms/{id}-{md5(id . created)}: where WPForms (1.7.6+) puts its uploads."""
        return f"{self.id}-{hashlib.md5(f'{self.id}{self.created}'.encode()).hexdigest()}"  # noqa: S324


def make_form(wp: LocalWordPress, title: str = "Intake", status: str = "publish") -> Form:
    """Insert a `wpforms` post (the emulator's job in real use; enough for the bridge)."""
    out = wp.php(
        """
        $id = wp_insert_post( array(
            'post_type' => 'wpforms', 'post_status' => $snippet_args[1],
            'post_title' => $snippet_args[0], 'post_content' => '{}',
        ), true );
        if ( is_wp_error( $id ) ) { fwrite( STDERR, $id->get_error_message() ); exit( 1 ); }
        echo wp_json_encode( array( 'id' => $id, 'created' => get_post( $id )->post_date ) );
        """,
        title,
        status,
    )
    data = json.loads(out)
    return Form(int(data["id"]), data["created"], title)


def upload(wp: LocalWordPress, form: Form, user_name: str, content: bytes) -> dict[str, Any]:
    """Put a file where WPForms stores uploads; its value_raw item (modern style)."""
    stem, _, ext = user_name.rpartition(".")
    stored = f"{stem}-{secrets.token_hex(16)}.{ext.lower()}"
    folder = wp.uploads_dir / "wpforms" / form.folder
    folder.mkdir(parents=True, exist_ok=True)
    (folder / stored).write_bytes(content)
    return {
        "name": user_name,
        "value": f"{wp.url}/wp-content/uploads/wpforms/{form.folder}/{stored}",
        "file": stored,
        "file_original": user_name,
        "file_user_name": user_name,
        "ext": ext.lower(),
        "attachment_id": 0,
        "id": 0,  # set by the field
        "type": {"pdf": "application/pdf", "png": "image/png"}.get(ext.lower(), "image/jpeg"),
    }


def media_upload(wp: LocalWordPress, user_name: str, content: bytes) -> dict[str, Any]:
    """A file stored in the media library ("store in media library"): attachment_id > 0."""
    stem, _, ext = user_name.rpartition(".")
    stored = f"{stem}-{secrets.token_hex(16)}.{ext.lower()}"
    month = wp.uploads_dir / "2024" / "05"
    month.mkdir(parents=True, exist_ok=True)
    (month / stored).write_bytes(content)
    out = wp.php(
        """
        $path = $snippet_args[0];
        $id   = wp_insert_attachment( array(
            'post_mime_type' => 'application/pdf', 'post_title' => $snippet_args[1],
            'post_status' => 'inherit', 'post_content' => '',
        ), $path, 0, true );
        if ( is_wp_error( $id ) ) { fwrite( STDERR, $id->get_error_message() ); exit( 1 ); }
        echo wp_json_encode( array( 'id' => $id, 'url' => wp_get_attachment_url( $id ) ) );
        """,
        str(month / stored),
        stem,
    )
    data = json.loads(out)
    return {
        "name": user_name,
        "value": data["url"],
        "file": stored,
        "file_original": user_name,
        "file_user_name": user_name,
        "ext": ext.lower(),
        "attachment_id": int(data["id"]),
        "id": 0,
        "type": "application/pdf",
    }


def _sample(kind: str, size: int) -> bytes:
    """A sample that passes the sidecar's structural checks (a header alone would not)."""
    with tempfile.TemporaryDirectory() as d:
        return samples.WRITERS[kind](Path(d) / kind, size).read_bytes()


PDF = _sample("pdf", 1400)
PNG = _sample("png", 1508)
CARD_PNG = _sample("png", 1200)


@dataclass
class Submission:
    """The four arguments of `wpforms_process_complete`, as WPForms builds them."""

    form: Form
    entry_id: int
    fields: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def basic(cls, form: Form, entry_id: int, name: str = "Jane Doe") -> Submission:
        first, _, last = name.partition(" ")
        fields = {
            "1": {"name": "Name", "value": name, "id": 1, "type": "name",
                  "first": first, "middle": "", "last": last},
            "2": {"name": "Email", "value": "jane.doe@example.com", "id": 2, "type": "email"},
            "3": {"name": "Date of birth", "value": "1980-02-01", "id": 3, "type": "text"},
            "6": {"name": "Notes", "value": "100% sure \u2014 Jos\u00e9's \"quoted\" \\ note",
                  "id": 6, "type": "textarea"},
        }
        return cls(form, entry_id, fields)

    def with_modern_files(self, field_id: int, items: list[dict[str, Any]],
                          name: str = "Documents") -> Submission:
        raw = [{**item, "id": field_id} for item in items]
        self.fields[str(field_id)] = {
            "name": name, "id": field_id, "type": "file-upload", "style": "modern",
            "visible": True, "value": "\n".join(i["value"] for i in raw),
            "value_raw": raw if raw else "",
        }
        return self

    def with_classic_file(self, field_id: int, item: dict[str, Any] | None,
                          name: str = "ID card") -> Submission:
        if item is None:  # classic field, nothing uploaded
            self.fields[str(field_id)] = {"name": name, "value": "", "id": field_id,
                                          "type": "file-upload", "visible": True}
            return self
        self.fields[str(field_id)] = {
            "name": name, "id": field_id, "type": "file-upload", "visible": True,
            "value": item["value"], "file": item["file"], "file_original": item["file_original"],
            "file_user_name": item["file_user_name"], "ext": item["ext"],
            "attachment_id": item["attachment_id"],
        }
        return self

    def hook_args(self) -> dict[str, Any]:
        """fields, entry (the unslashed $_POST['wpforms']), form_data, entry_id."""
        real = {fid: f for fid, f in self.fields.items() if isinstance(f, dict)}
        entry_fields = {fid: f.get("value", "") for fid, f in real.items()}
        return {
            "fields": self.fields,
            "entry": {"id": str(self.form.id), "fields": entry_fields, "author": "0",
                      "post_id": "7", "token": secrets.token_hex(16)},
            "form_data": {"id": str(self.form.id), "field_id": 10, "created": self.form.created,
                          "settings": {"form_title": self.form.title, "ajax_submit": "1"},
                          "fields": {fid: {"id": f.get("id", fid), "type": f.get("type", ""),
                                           "label": f.get("name", "")}
                                     for fid, f in real.items()}},
            "entry_id": self.entry_id,
        }


def expected_file(wp: LocalWordPress, field_id: int, position: int, item: dict[str, Any],
                  path: Path) -> dict[str, Any]:
    """The snapshot's entry for one file at ``path``."""
    uploads = wp.uploads_dir.resolve()
    return {
        "field_id": str(field_id),
        "position": position,
        "name": item["file_user_name"],
        "path": str(path),
        "relative": str(path.relative_to(uploads)) if path.is_relative_to(uploads) else "",
        "url": item["value"],
        "attachment_id": item["attachment_id"],
        "size": path.stat().st_size,
    }


# --------------------------------------------------------------- the capture
_CAPTURE_PHP = r"""
$fr_submissions = json_decode( $snippet_args[0], true );
$GLOBALS['fr_t0'] = microtime( true );
// Runs after WordPress's own shutdown hook (registered first), so after the notify.
register_shutdown_function(
    function () {
        echo "\n" . wp_json_encode( array( 'elapsed' => microtime( true ) - $GLOBALS['fr_t0'] ) );
    }
);
foreach ( $fr_submissions as $a ) {
    do_action(
        'wpforms_process_complete', $a['fields'], $a['entry'], $a['form_data'], $a['entry_id']
    );
}
echo 'captured';
"""


@dataclass
class CaptureRun:
    stdout: str  # what the snippet printed before its own timing line: "captured"
    stderr: str
    elapsed: float  # seconds from the first do_action() to the end of WordPress's shutdown hook
    wall: float  # seconds around the whole PHP process


def capture(wp: LocalWordPress, *subs: Submission, setup: str = "") -> CaptureRun:
    """Fire `wpforms_process_complete` for each submission, in one PHP request.

    ``setup`` is PHP run first (e.g. an add_filter() for this request).
    """
    payload = json.dumps([s.hook_args() for s in subs])
    t0 = time.monotonic()
    proc = wp.php_run(setup + "\n" + _CAPTURE_PHP, payload)
    wall = time.monotonic() - t0
    head, _, tail = proc.stdout.rpartition("\n")
    return CaptureRun(head, proc.stderr, float(json.loads(tail)["elapsed"]), wall)


# PHP for capture(setup=...): this request sends no notify (as if no sidecar URL were set).
NO_NOTIFY = """
add_filter( 'option_formrelay_bridge_settings', function ( $value ) {
    return array_merge( (array) $value, array( 'sidecar_url' => '' ) );
} );
"""


@dataclass
class AddedCost:
    php: float  # median added seconds, measured inside PHP
    wall: float  # median added seconds around the PHP process
    runs: list[CaptureRun]  # the runs with the notify


def added_cost(wp: LocalWordPress, make: Callable[[], list[Submission]],
               pairs: int = 5) -> AddedCost:
    """What the notify adds to a request capturing ``make()``: the median difference of
    ``pairs`` back-to-back pairs of requests, one without the notify, one with it.

    Pairs (rather than one baseline for all) keep a busy machine's drift out of the
    difference; the in-PHP figure has no process start-up noise at all.
    """
    php, wall, runs = [], [], []
    for _ in range(pairs):
        base = capture(wp, *make(), setup=NO_NOTIFY)
        run = capture(wp, *make())
        php.append(run.elapsed - base.elapsed)
        wall.append(run.wall - base.wall)
        runs.append(run)
    return AddedCost(statistics.median(php), statistics.median(wall), runs)


# ----------------------------------------------------------- sidecar doubles
@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    at: float  # time.time() when read


def _read_request(conn: socket.socket) -> Received | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return Received(method, path, headers, body, time.time())


SENTINEL_PATH = "/__sentinel__"


class _SidecarServer:
    """A listener on a free port of 127.0.0.1 whose thread accepts one connection at a time.

    Each connection goes to ``_handle()``; ``_record()`` reads its request into
    ``received``. ``close()`` stops listening and waits for the thread.
    """

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.received: list[Received] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._handle(conn)

    def _handle(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def _record(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            req = _read_request(conn)
        except (OSError, ValueError):
            req = None
        if req is not None:
            with self._cond:
                self.received.append(req)
                self._cond.notify_all()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(5)


class RecordingSidecar(_SidecarServer):
    """A sidecar that records each request and answers 202, one connection at a time.

    Connections are handled in the order they were made, so ``drain()`` (which
    sends a request of its own and waits for it) returns every request made
    before it was called, without sleeping.
    """

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            self._record(conn)
            with contextlib.suppress(OSError):
                conn.sendall(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n"
                             b"Connection: close\r\n\r\n")

    def drain(self, timeout: float = 10) -> list[Received]:
        """Every request received before this call (the sentinel left out); then forget them."""
        token = secrets.token_hex(8)
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as conn:
            conn.sendall(f"GET {SENTINEL_PATH}?{token} HTTP/1.1\r\nHost: x\r\n"
                         "Content-Length: 0\r\n\r\n".encode())
            with self._cond:
                ok = self._cond.wait_for(
                    lambda: any(r.path.endswith(token) for r in self.received), timeout)
        assert ok, "the recording sidecar never saw its own sentinel request"
        with self._cond:
            got = [r for r in self.received if not r.path.startswith(SENTINEL_PATH)]
            self.received = []
        return got


class SilentSidecar(_SidecarServer):
    """Accepts connections and reads the request, then never answers (a hung sidecar)."""

    def __init__(self) -> None:
        self._held: list[socket.socket] = []  # before the accept thread starts
        super().__init__()

    def _handle(self, conn: socket.socket) -> None:
        self._held.append(conn)  # never answered, closed only by close()
        self._record(conn)

    def wait_for(self, count: int, timeout: float = 10) -> list[Received]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.received) >= count, timeout), (
                f"the silent sidecar got {len(self.received)} requests, expected {count}")
            return list(self.received)

    def close(self) -> None:
        super().close()
        for conn in self._held:
            conn.close()


class BlackholeSidecar:
    """A port whose SYNs go unanswered, like a host behind a dropping firewall.

    A listener with a backlog of 0 that never accepts: once one connection
    fills its queue, the kernel drops further SYNs and a connect() hangs.
    """

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._fillers = [socket.create_connection(("127.0.0.1", self.port), timeout=5)]
        # Proof that it now swallows connects (a probe that does not time out fails the set-up).
        probe = socket.socket()
        probe.settimeout(0.2)
        try:
            with pytest.raises((TimeoutError, socket.timeout)):
                probe.connect(("127.0.0.1", self.port))
        finally:
            probe.close()

    def close(self) -> None:
        for conn in self._fillers:
            conn.close()
        self.sock.close()


def closed_port() -> str:
    """The URL of a port nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# ------------------------------------------------------------------- wp-admin
def login(wp: LocalWordPress, user: str, password: str) -> requests.Session:
    """A requests.Session logged in to wp-admin as ``user``, over HTTP like a browser."""
    session = requests.Session()
    session.get(f"{wp.url}/wp-login.php", timeout=30)  # sets the test cookie
    resp = session.post(
        f"{wp.url}/wp-login.php",
        data={"log": user, "pwd": password, "wp-submit": "Log In",
              "redirect_to": f"{wp.url}/wp-admin/", "testcookie": "1"},
        allow_redirects=False,
        timeout=30,
    )
    assert resp.status_code == 302, resp.text[-2000:]
    assert any(c.name.startswith("wordpress_logged_in") for c in session.cookies)
    return session


def settings_page_url(wp: LocalWordPress) -> str:
    return f"{wp.url}/wp-admin/options-general.php?page=formrelay-bridge"


def form_fields(html: str) -> dict[str, str]:
    """Hidden inputs of the settings form (option_page, action, _wpnonce, _wp_http_referer)."""
    found = {}
    for tag in re.findall(r"<input[^>]*type=[\"']hidden[\"'][^>]*>", html):
        attrs = {k: v for k, _, v in re.findall(r"""(\w+)=(["'])(.*?)\2""", tag)}
        if "name" in attrs and not attrs["name"].startswith(OPTION):
            found[attrs["name"]] = attrs.get("value", "")
    return found
