"""Support for delivery tests: WPForms' tables, snapshots, and an engine on a scratch DB.

The WPForms DDL is the reference's (shared/wpforms-reference.md); wp_posts and
wp_postmeta carry only the columns FormRelay reads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sidecar.backoff import RetryPolicy
from sidecar.config import DEFAULT_TEMPLATES
from sidecar.engine import Engine, EngineSettings
from sidecar.file_checks import FilePolicy
from sidecar.partner_client import PartnerClient, PartnerSettings
from sidecar.payload import PayloadRenderer
from sidecar.store import NewJob, Store

WPFORMS_DDL = """
CREATE TABLE IF NOT EXISTS {p}wpforms_entries (
 entry_id bigint(20) NOT NULL AUTO_INCREMENT, form_id bigint(20) NOT NULL,
 post_id bigint(20) NOT NULL, user_id bigint(20) NOT NULL, status varchar(30) NOT NULL,
 type varchar(30) NOT NULL, viewed tinyint(1) DEFAULT 0, starred tinyint(1) DEFAULT 0,
 fields longtext NOT NULL, meta longtext NOT NULL, date datetime NOT NULL,
 date_modified datetime NOT NULL, ip_address varchar(128) NOT NULL,
 user_agent varchar(256) NOT NULL, user_uuid varchar(36) NOT NULL,
 PRIMARY KEY (entry_id), KEY form_id (form_id));
CREATE TABLE IF NOT EXISTS {p}wpforms_entry_meta (
 id bigint(20) NOT NULL AUTO_INCREMENT, entry_id bigint(20) NOT NULL,
 form_id bigint(20) NOT NULL, user_id bigint(20) NOT NULL, status varchar(30) NOT NULL,
 type varchar(255) NOT NULL, data longtext NOT NULL, date datetime NOT NULL,
 PRIMARY KEY (id), KEY entry_id (entry_id));
CREATE TABLE IF NOT EXISTS {p}posts (
 ID bigint(20) unsigned NOT NULL AUTO_INCREMENT, post_type varchar(20) NOT NULL DEFAULT 'post',
 post_status varchar(20) NOT NULL DEFAULT 'publish', post_title text NOT NULL,
 post_content longtext NOT NULL, post_date datetime NOT NULL, PRIMARY KEY (ID));
CREATE TABLE IF NOT EXISTS {p}postmeta (
 meta_id bigint(20) unsigned NOT NULL AUTO_INCREMENT, post_id bigint(20) unsigned NOT NULL,
 meta_key varchar(255) DEFAULT NULL, meta_value longtext, PRIMARY KEY (meta_id),
 KEY post_id (post_id))
"""


def text_fields() -> dict[str, dict[str, Any]]:
    return {
        "1": {"name": "Name", "value": "Jane Doe", "id": 1, "type": "name",
              "first": "Jane", "middle": "", "last": "Doe"},
        "2": {"name": "Email", "value": "jane@example.com", "id": 2, "type": "email"},
        "3": {"name": "Date of birth", "value": "1980-02-01", "id": 3, "type": "text"},
    }


def modern_file_field(field_id: int, names: list[str], urls: list[str]) -> dict[str, Any]:
    """A modern-style upload field as WPForms stores it (value_raw is a list)."""
    return {"name": "Documents", "id": field_id, "type": "file-upload", "style": "modern",
            "visible": True, "value": "\n".join(urls),
            "value_raw": [{"name": n, "value": u, "file": u.rsplit("/", 1)[-1],
                           "file_original": n, "file_user_name": n, "ext": n.rsplit(".", 1)[-1],
                           "attachment_id": 0, "id": field_id, "type": "application/pdf"}
                          for n, u in zip(names, urls, strict=True)]}


def snapshot(form_id: int, entry_id: int, fields: dict[str, Any], uploads: Path,
             files: list[Path], field_id: str = "4") -> str:
    """A bridge snapshot: the fields, plus each file's place under the uploads dir."""
    if files:
        fields = {**fields, field_id: modern_file_field(
            int(field_id), [f.name for f in files],
            [f"https://site.test/wp-content/uploads/{f.relative_to(uploads)}" for f in files])}
    return json.dumps({
        "version": 1, "form_id": form_id, "entry_id": entry_id, "fields": fields,
        "files": [{"field_id": field_id, "position": i, "name": f.name, "path": str(f),
                   "relative": str(f.relative_to(uploads)), "size": f.stat().st_size}
                  for i, f in enumerate(files)]})


@dataclass
class RecordingDoorbell:
    """Collects rings instead of enqueueing; the test decides when they run."""

    rings: list[tuple[str, int, float]] = field(default_factory=list)

    def ring_record(self, job_id: int, priority: int, delay: float = 0) -> None:
        self.rings.append(("record", job_id, delay))

    def ring_document(self, document_id: int, priority: int, delay: float = 0) -> None:
        self.rings.append(("document", document_id, delay))


@dataclass
class Delivery:
    store: Store
    engine: Engine
    doorbell: RecordingDoorbell
    uploads: Path

    def enqueue(self, reference: str, snap: str | None, entry_id: int = 0, form_id: int = 12,
                max_attempts: int = 10) -> int:
        job, _ = self.store.enqueue(NewJob(reference, form_id, entry_id, snap,
                                           max_attempts=max_attempts))
        self.doorbell.ring_record(job.id, job.priority)
        return job.id

    def drain(self, max_steps: int = 200) -> int:
        """Run every ring in order (ignoring delays: the engine's claim decides), until none."""
        steps = 0
        while self.doorbell.rings and steps < max_steps:
            kind, item_id, _ = self.doorbell.rings.pop(0)
            if kind == "record":
                self.engine.deliver_record(item_id)
            else:
                self.engine.deliver_document(item_id)
            steps += 1
        return steps

    def make_due(self) -> None:
        """Let time pass: every waiting step becomes due now, and is rung again."""
        with self.store.db.transaction() as cur:
            for table in ("jobs", "documents"):
                cur.execute(f"UPDATE {getattr(self.store.t, table)} SET next_attempt_at ="
                            " UTC_TIMESTAMP(3) WHERE status = 'retrying'")
            cur.execute(f"SELECT id FROM {self.store.t.jobs} WHERE status = 'retrying'")
            jobs = [r["id"] for r in cur.fetchall()]
            cur.execute(f"SELECT id FROM {self.store.t.documents} WHERE status = 'retrying'")
            docs = [r["id"] for r in cur.fetchall()]
        self.doorbell.rings += [("record", j, 0) for j in jobs] + [("document", d, 0)
                                                                   for d in docs]


def build_delivery(store: Store, partner_url: str, uploads: Path, token: str = "",
                   read_timeout: float = 2.0, retry: RetryPolicy | None = None,
                   files: FilePolicy | None = None, max_attempts: int = 10) -> Delivery:
    client = PartnerClient(PartnerSettings(partner_url, token, connect_timeout=1,
                                           read_timeout=read_timeout))
    doorbell = RecordingDoorbell()
    settings = EngineSettings(uploads, lease_seconds=60, max_attempts=max_attempts,
                              retry=retry or RetryPolicy(base=0, max_backoff=3600),
                              files=files or FilePolicy())
    engine = Engine(store, client, PayloadRenderer(DEFAULT_TEMPLATES), doorbell, settings)
    return Delivery(store, engine, doorbell, uploads)
