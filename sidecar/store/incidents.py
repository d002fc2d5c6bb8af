"""Incidents and their alert outbox (migration 7): every SQL statement of the monitor.

Opening is one INSERT that the UNIQUE open_key turns into a no-op for a second
host; each message is one outbox row per channel under a UNIQUE key, written in
the same transaction as the change that causes it, with its log row. Senders
lease outbox rows (SKIP LOCKED where the server has it), so each row is sent by
one sender at a time, and a killed sender's row comes back when its lease ends.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mysql.connector import errorcode
from mysql.connector.errors import ProgrammingError

from sidecar.store.base import StoreBase
from sidecar.store.retry import retried
from sidecar.store.rows import LogEntry

INCIDENT_COLUMNS = ("id, kind, severity, open_key, summary, details, opened_at, updated_at,"
                    " resolved_at, digest_seq, digest_at")
ALERT_COLUMNS = "id, incident_id, message, seq, channel, attempts, facts"
FORM_NAME_CHARS = 100


@dataclass(frozen=True)
class Incident:
    id: int
    kind: str
    severity: str  # critical | warning
    summary: str
    details: dict[str, Any]
    opened_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    digest_seq: int  # the last message cut: 0 the "opened" one, then each digest
    digest_at: datetime | None  # when it was cut (failures after it wait for the next)

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None

    @classmethod
    def from_row(cls, r: dict[str, Any]) -> Incident:
        return cls(int(r["id"]), str(r["kind"]), str(r["severity"]), str(r["summary"]),
                   json.loads(r["details"] or "{}"), r["opened_at"], r["updated_at"],
                   r["resolved_at"], int(r["digest_seq"]), r["digest_at"])


@dataclass(frozen=True)
class Alert:
    """An outbox row leased for sending."""

    id: int
    incident_id: int
    message: str  # opened | digest | resolved
    seq: int
    channel: str  # email | webhook
    attempts: int  # including this one
    facts: dict[str, Any]


@dataclass(frozen=True)
class FailedForm:
    form_id: int
    name: str  # the WPForms form title ("" when WordPress' posts table has none)
    failed: int


@dataclass(frozen=True)
class FailedSummary:
    """Jobs failed permanently and still failed: how many, of which forms, why (categories)."""

    failed: int
    forms: tuple[FailedForm, ...]
    categories: dict[str, int]

    def as_json(self) -> dict[str, Any]:
        return {"failed": self.failed, "categories": self.categories,
                "forms": [{"id": f.form_id, "name": f.name, "failed": f.failed}
                          for f in self.forms]}


class IncidentStore(StoreBase):
    @property
    def _incidents(self) -> str:
        return f"{self.prefix}formrelay_incidents"

    @property
    def _alerts(self) -> str:
        return f"{self.prefix}formrelay_alerts"

    def db_now(self) -> datetime:
        with self.db.transaction() as cur:
            return self.now(cur)

    def open_incidents(self) -> dict[str, Incident]:
        with self.db.transaction() as cur:
            cur.execute(f"SELECT {INCIDENT_COLUMNS} FROM {self._incidents}"
                        " WHERE open_key IS NOT NULL")
            return {str(r["kind"]): Incident.from_row(r) for r in cur.fetchall()}

    def incidents(self, limit: int = 50, recent_days: int = 7) -> list[Incident]:
        """Open incidents, then those resolved in the last `recent_days`, newest first."""
        with self.db.transaction() as cur:
            cur.execute(f"SELECT {INCIDENT_COLUMNS} FROM {self._incidents}"
                        " WHERE open_key IS NOT NULL"
                        " OR resolved_at > UTC_TIMESTAMP(3) - INTERVAL %s DAY"
                        " ORDER BY open_key IS NULL, id DESC LIMIT %s", (recent_days, limit))
            return [Incident.from_row(r) for r in cur.fetchall()]

    @retried
    def open_incident(self, kind: str, severity: str, summary: str, details: dict[str, Any],
                      channels: Sequence[str], facts: dict[str, Any]) -> Incident | None:
        """Open `kind` with its "opened" messages; None when it is open already (another
        host's INSERT won: the unique open_key makes this one a no-op)."""
        with self.db.transaction() as cur:
            now = self.now(cur)
            cur.execute(f"INSERT INTO {self._incidents} (kind, severity, open_key, summary,"
                        " details, opened_at, updated_at, digest_seq, digest_at)"
                        " VALUES (%s, %s, %s, %s, %s, %s, %s, 0, %s)"
                        " ON DUPLICATE KEY UPDATE id = id",
                        (kind, severity, kind, summary[:255], json.dumps(details), now, now, now))
            if cur.rowcount != 1:
                return None
            incident_id = int(cur.lastrowid)
            self._outbox(cur, incident_id, "opened", 0, channels, facts, now)
            self._log(cur, None, None, LogEntry(
                "incident.opened", f"incident {incident_id} opened: {kind} ({severity}):"
                f" {summary}", level="error" if severity == "critical" else "warning"), None, now)
            cur.execute(f"SELECT {INCIDENT_COLUMNS} FROM {self._incidents} WHERE id = %s",
                        (incident_id,))
            return Incident.from_row(cur.fetchone())

    @retried
    def update_incident(self, incident_id: int, severity: str, summary: str,
                        details: dict[str, Any]) -> None:
        """Refresh an open incident's picture (updated_at too: it says the condition holds)."""
        with self.db.transaction() as cur:
            cur.execute(f"UPDATE {self._incidents} SET severity = %s, summary = %s,"
                        " details = %s, updated_at = UTC_TIMESTAMP(3)"
                        " WHERE id = %s AND open_key IS NOT NULL",
                        (severity, summary[:255], json.dumps(details), incident_id))

    @retried
    def cut_digest(self, incident_id: int, after_seq: int, channels: Sequence[str],
                   facts: dict[str, Any]) -> bool:
        """The next message (digest after_seq + 1) of an open incident; False when another
        host cut it first (digest_seq moved) or the incident was resolved meanwhile."""
        with self.db.transaction() as cur:
            now = self.now(cur)
            cur.execute(f"UPDATE {self._incidents} SET digest_seq = %s, digest_at = %s"
                        " WHERE id = %s AND digest_seq = %s AND open_key IS NOT NULL",
                        (after_seq + 1, now, incident_id, after_seq))
            if cur.rowcount != 1:
                return False
            self._outbox(cur, incident_id, "digest", after_seq + 1, channels, facts, now)
            self._log(cur, None, None, LogEntry(
                "incident.digest", f"incident {incident_id}: digest {after_seq + 1} queued",
                level="warning"), None, now)
            return True

    @retried
    def resolve_incident(self, incident_id: int, channels: Sequence[str],
                         facts: dict[str, Any]) -> bool:
        """Resolve an open incident with its "resolved" messages; False if it was already."""
        with self.db.transaction() as cur:
            now = self.now(cur)
            cur.execute(f"UPDATE {self._incidents} SET open_key = NULL, resolved_at = %s,"
                        " updated_at = %s WHERE id = %s AND open_key IS NOT NULL",
                        (now, now, incident_id))
            if cur.rowcount != 1:
                return False
            self._outbox(cur, incident_id, "resolved", 0, channels, facts, now)
            self._log(cur, None, None, LogEntry(
                "incident.resolved", f"incident {incident_id} resolved: {facts.get('kind', '')}",
                level="info"), None, now)
            return True

    def _outbox(self, cur: Any, incident_id: int, message: str, seq: int,
                channels: Iterable[str], facts: dict[str, Any], now: datetime) -> None:
        for channel in channels:  # IGNORE: the unique key keeps each message once per channel
            cur.execute(f"INSERT IGNORE INTO {self._alerts} (incident_id, message, seq,"
                        " channel, status, attempts, next_attempt_at, facts, created_at)"
                        " VALUES (%s, %s, %s, %s, 'pending', 0, %s, %s, %s)",
                        (incident_id, message, seq, channel, now, json.dumps(facts), now))

    # ---- what the rules need to know -----------------------------------------------------

    def failed_summary(self, since: datetime | None = None) -> FailedSummary:
        """Jobs in status failed (those that failed after `since` only, when given)."""
        where, params = "status = 'failed'", ()
        if since is not None:
            where, params = where + " AND failed_at > %s", (since,)  # type: ignore[assignment]
        with self.db.transaction() as cur:
            cur.execute(f"SELECT form_id, COALESCE(error_category, '') AS category,"
                        f" COUNT(*) AS n FROM {self.t.jobs} WHERE {where}"
                        " GROUP BY form_id, category", params)
            rows = cur.fetchall()
        by_form: dict[int, int] = {}
        categories: dict[str, int] = {}
        for r in rows:
            by_form[int(r["form_id"])] = by_form.get(int(r["form_id"]), 0) + int(r["n"])
            name = str(r["category"]) or "unknown"
            categories[name] = categories.get(name, 0) + int(r["n"])
        names = self.form_names(list(by_form))
        forms = tuple(FailedForm(f, names.get(f, ""), n) for f, n in sorted(by_form.items()))
        return FailedSummary(sum(by_form.values()), forms, dict(sorted(categories.items())))

    def form_names(self, form_ids: Sequence[int]) -> dict[int, str]:
        """WPForms form titles (posts of type wpforms); {} without WordPress' posts table."""
        if not form_ids:
            return {}
        marks = ", ".join(["%s"] * len(form_ids))
        try:
            with self.db.transaction() as cur:
                cur.execute(f"SELECT ID, post_title FROM {self.prefix}posts"
                            f" WHERE post_type = 'wpforms' AND ID IN ({marks})", tuple(form_ids))
                return {int(r["ID"]): str(r["post_title"])[:FORM_NAME_CHARS]
                        for r in cur.fetchall()}
        except ProgrammingError as exc:
            if exc.errno != errorcode.ER_NO_SUCH_TABLE:
                raise
            return {}

    # ---- the outbox's senders ------------------------------------------------------------

    @retried
    def claim_alerts(self, owner: str, channels: Sequence[str], limit: int,
                     lease_seconds: float) -> list[Alert]:
        """Lease up to `limit` due messages of `channels`, oldest first; counts the attempt."""
        if not channels:
            return []
        marks = ", ".join(["%s"] * len(channels))
        lock = " SKIP LOCKED" if self.skip_locked else ""
        with self.db.transaction() as cur:
            cur.execute(f"SELECT {ALERT_COLUMNS}, UTC_TIMESTAMP(3) AS db_now FROM {self._alerts}"
                        " FORCE INDEX (due) WHERE status = 'pending'"
                        " AND next_attempt_at <= UTC_TIMESTAMP(3)"
                        " AND (lease_expires_at IS NULL OR lease_expires_at < UTC_TIMESTAMP(3))"
                        f" AND channel IN ({marks}) ORDER BY next_attempt_at, id LIMIT %s"
                        f" FOR UPDATE{lock}", (*channels, limit))
            rows = cur.fetchall()
            for r in rows:
                cur.execute(f"UPDATE {self._alerts} SET lease_owner = %s, lease_expires_at = %s,"
                            " attempts = attempts + 1 WHERE id = %s",
                            (owner[:160], r["db_now"] + timedelta(seconds=lease_seconds),
                             r["id"]))
        return [Alert(int(r["id"]), int(r["incident_id"]), str(r["message"]), int(r["seq"]),
                      str(r["channel"]), int(r["attempts"]) + 1, json.loads(r["facts"] or "{}"))
                for r in rows]

    def incident(self, incident_id: int) -> Incident | None:
        with self.db.transaction() as cur:
            cur.execute(f"SELECT {INCIDENT_COLUMNS} FROM {self._incidents} WHERE id = %s",
                        (incident_id,))
            row = cur.fetchone()
        return Incident.from_row(row) if row else None

    @retried
    def alert_sent(self, alert: Alert, owner: str) -> bool:
        """Mark a leased message sent (with its log row); False if the lease was lost."""
        return self._settle_alert(alert, owner, "sent", None, None)

    @retried
    def alert_retry(self, alert: Alert, owner: str, delay: float, error: str) -> bool:
        return self._settle_alert(alert, owner, "pending", delay, error)

    @retried
    def alert_failed(self, alert: Alert, owner: str, error: str) -> bool:
        return self._settle_alert(alert, owner, "failed", None, error)

    def _settle_alert(self, alert: Alert, owner: str, status: str, delay: float | None,
                      error: str | None) -> bool:
        with self.db.transaction() as cur:
            now = self.now(cur)
            after = now + timedelta(seconds=delay or 0)
            cur.execute(f"UPDATE {self._alerts} SET status = %s, lease_owner = NULL,"
                        " lease_expires_at = NULL, next_attempt_at = %s, last_error = %s,"
                        " sent_at = IF(%s = 'sent', %s, sent_at)"
                        " WHERE id = %s AND lease_owner = %s AND status = 'pending'",
                        (status, after, error[:255] if error else None, status, now, alert.id,
                         owner[:160]))
            if cur.rowcount != 1:
                return False
            what = (f"alert {alert.id} ({alert.message} of incident {alert.incident_id})"
                    f" via {alert.channel}")
            if status == "sent":
                entry = LogEntry("alert.sent", f"{what} sent (attempt {alert.attempts})",
                                 level="info")
            elif status == "failed":
                entry = LogEntry("alert.failed", f"{what} failed after {alert.attempts}"
                                 f" attempts: {error}", level="error")
            else:
                entry = LogEntry("alert.retry", f"{what} attempt {alert.attempts} failed:"
                                 f" {error}; next in {delay:.0f} s", level="warning")
            self._log(cur, None, None, entry, None, now)
            return True

    def alert_rows(self, incident_id: int | None = None) -> list[dict[str, Any]]:
        """Outbox rows (for status pages and tests), oldest first."""
        where, params = ("WHERE incident_id = %s", (incident_id,)) if incident_id else ("", ())
        with self.db.transaction() as cur:
            cur.execute(f"SELECT id, incident_id, message, seq, channel, status, attempts,"
                        f" sent_at, last_error FROM {self._alerts} {where} ORDER BY id", params)
            return list(cur.fetchall())
