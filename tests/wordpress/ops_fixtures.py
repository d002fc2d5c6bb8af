"""The delivery state the wp-admin notices read, written straight into a site's tables.

The sidecar's incident monitor writes `{prefix}formrelay_incidents` (migration 0007); these
tests write the same columns themselves, and the real pause row (`formrelay_meta` name
`breaker`, sidecar/breaker.py's Breaker as JSON). `notices()` renders the plugin's
`admin_notices` output for a user, with the number of queries it cost.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass

from devstack.wordpress import LocalWordPress
from sidecar.breaker import Breaker

NOTICE = re.compile(
    r'<div class="notice notice-(\w+) formrelay-ops-notice formrelay-ops-([\w-]+)"'
    r' data-formrelay-incident="(\d*)"><p>(.*?)</p>(.*?)</div>', re.S)
FAILED = re.compile(
    r'<div class="notice notice-(\w+) formrelay-ops-notice formrelay-ops-failed">'
    r'<p>(.*?)</p>(.*?)</div>', re.S)
TAG = re.compile(r"<[^>]+>")


@dataclass(frozen=True)
class Notice:
    type: str  # error | warning
    kind: str  # paused | failed | sidecar-down | incident
    incident: int  # 0 when no incident backs it
    text: str  # the paragraph's text, tags stripped, entities decoded
    markup: str  # the paragraph as printed
    dismissible: bool


@dataclass(frozen=True)
class Rendered:
    notices: list[Notice]
    queries: int
    html: str

    def kinds(self) -> list[str]:
        return [n.kind for n in self.notices]

    def one(self, kind: str) -> Notice:
        found = [n for n in self.notices if n.kind == kind]
        assert len(found) == 1, (kind, self.notices)
        return found[0]


def parse(page: str) -> list[Notice]:
    found = [Notice(t, k, int(i or 0), html.unescape(TAG.sub("", p)), p, "formrelay-dismiss" in f)
             for t, k, i, p, f in NOTICE.findall(page)]
    found += [Notice(t, "failed", 0, html.unescape(TAG.sub("", p)), p, "formrelay-dismiss" in f)
              for t, p, f in FAILED.findall(page)]
    return found


def notices(wp: LocalWordPress, user: str) -> Rendered:
    """What FormRelay's admin_notices callback prints for ``user``, and its query count."""
    out = wp.php(
        """
        global $wpdb;
        $before = $wpdb->num_queries;
        ob_start();
        FormRelay_Notices::render();
        $printed = ob_get_clean();
        echo ( $wpdb->num_queries - $before ) . "\\n" . $printed;
        """,
        user=user, admin=True)
    count, _, page = out.partition("\n")
    return Rendered(parse(page), int(count), page)


def reset(wp: LocalWordPress) -> None:
    """No pause, no jobs, no workers, no incidents; nobody has looked or dismissed."""
    p = wp.table_prefix
    with wp.db() as conn:
        cur = conn.cursor()
        for table in ("incidents", "workers", "log", "jobs", "counts"):
            cur.execute(f"DELETE FROM {p}formrelay_{table}")
        cur.execute(f"DELETE FROM {p}formrelay_meta WHERE name = 'breaker'"
                    " OR name LIKE 'breaker:%'")
        cur.execute(f"DELETE FROM {p}usermeta WHERE meta_key IN"
                    " ('formrelay_last_looked', 'formrelay_dismissed_incidents')")
    wp.php("wp_cache_flush();")


def pause(wp: LocalWordPress, cause: str, sticky: bool = False, partner: str = "") -> None:
    """The pause row as the sidecar writes it (the database's UTC clock); a named
    partner's (`breaker:<name>`) with `partner`."""
    with wp.db() as conn:
        cur = conn.cursor()
        cur.execute("SELECT DATE_FORMAT(UTC_TIMESTAMP(3) - INTERVAL 5 MINUTE,"
                    " '%Y-%m-%dT%H:%i:%s.%f')")
        (at,) = cur.fetchone()
        row = Breaker(paused=True, failures=5, cause=cause, sticky=sticky, paused_at=at[:23],
                      next_probe_at="" if sticky else at[:23], probe_wait=30.0)
        cur.execute(f"REPLACE INTO {wp.table_prefix}formrelay_meta (name, value, updated_at)"
                    " VALUES (%s, %s, UTC_TIMESTAMP(3))",
                    (f"breaker:{partner}" if partner else "breaker", row.to_json()))


def unpause(wp: LocalWordPress) -> None:
    with wp.db() as conn:
        conn.cursor().execute(
            f"REPLACE INTO {wp.table_prefix}formrelay_meta (name, value, updated_at)"
            " VALUES ('breaker', %s, UTC_TIMESTAMP(3))", (Breaker().to_json(),))


def open_incident(wp: LocalWordPress, kind: str, summary: str, severity: str = "warning") -> int:
    with wp.db() as conn:
        cur = conn.cursor()
        cur.execute(f"INSERT INTO {wp.table_prefix}formrelay_incidents (kind, severity, open_key,"
                    " summary, details, opened_at, updated_at) VALUES (%s, %s, %s, %s, '{}',"
                    " UTC_TIMESTAMP(3), UTC_TIMESTAMP(3))", (kind, severity, kind, summary))
        return int(cur.lastrowid)


def resolve_incident(wp: LocalWordPress, incident_id: int) -> None:
    with wp.db() as conn:
        conn.cursor().execute(
            f"UPDATE {wp.table_prefix}formrelay_incidents SET open_key = NULL,"
            " resolved_at = UTC_TIMESTAMP(3) WHERE id = %s", (incident_id,))


def failed_jobs(wp: LocalWordPress, count: int, failed_at: str) -> None:
    """``count`` failed jobs; ``failed_at`` is an SQL expression (e.g. a quoted time)."""
    with wp.db() as conn:
        cur = conn.cursor()
        for _ in range(count):
            cur.execute(f"INSERT INTO {wp.table_prefix}formrelay_jobs (reference, form_id, status,"
                        " created_at, updated_at, failed_at, last_error, error_category) VALUES"
                        " (UUID(), 1, 'failed', UTC_TIMESTAMP(3), UTC_TIMESTAMP(3),"
                        f" {failed_at}, 'HTTP 422 validation', 'validation')")
        # counted as the sidecar's state machine counts a job that fails (migration 0008)
        cur.execute(f"INSERT INTO {wp.table_prefix}formrelay_counts (form_id, status, slot, n)"
                    " VALUES (1, 'failed', 0, %s) ON DUPLICATE KEY UPDATE n = n + VALUES(n)",
                    (count,))


def waiting_jobs(wp: LocalWordPress, count: int) -> None:
    with wp.db() as conn:
        cur = conn.cursor()
        for _ in range(count):
            cur.execute(f"INSERT INTO {wp.table_prefix}formrelay_jobs (reference, form_id, status,"
                        " created_at, updated_at) VALUES (UUID(), 1, 'pending',"
                        " UTC_TIMESTAMP(3), UTC_TIMESTAMP(3))")


def worker(wp: LocalWordPress, seconds_ago: int, beat_seconds: int = 15) -> None:
    with wp.db() as conn:
        conn.cursor().execute(
            f"INSERT INTO {wp.table_prefix}formrelay_workers (id, host, pid, version, worker_type,"
            " threads, beat_seconds, started_at, last_seen) VALUES (CONCAT('h:', UUID()), 'h', 1,"
            " '0.1.0', 'thread', 4, %s, UTC_TIMESTAMP(3) - INTERVAL 1 HOUR,"
            " UTC_TIMESTAMP(3) - INTERVAL %s SECOND)", (beat_seconds, seconds_ago))


def looked(wp: LocalWordPress, user: str) -> str:
    """The user's last look at the FormRelay page (UTC 'Y-m-d H:i:s'), '' if never."""
    return wp.php("echo (string) get_user_meta( get_user_by( 'login', $snippet_args[0] )->ID,"
                  " 'formrelay_last_looked', true );", user)


def set_looked(wp: LocalWordPress, user: str, when: str) -> None:
    wp.php("update_user_meta( get_user_by( 'login', $snippet_args[0] )->ID,"
           " 'formrelay_last_looked', $snippet_args[1] );", user, when)


def dismissed(wp: LocalWordPress, user: str) -> list[int]:
    out = wp.php("echo wp_json_encode( array_values( (array) get_user_meta( get_user_by( 'login',"
                 " $snippet_args[0] )->ID, 'formrelay_dismissed_incidents', true ) ) );", user)
    return [int(i) for i in json.loads(out) if i]
