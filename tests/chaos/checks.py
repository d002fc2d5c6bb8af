"""The end of a chaos run: what the partner has against what the database says, each
submission checked end to end, every problem counted by category, and the history of a
step that ran out of attempts."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.chaos.faults import UNFINISHED, Monitor
from tests.chaos.submissions import Submission

GAVE_UP = "gave up after"  # how the state machine words a step that ran out of attempts
# how a job that ended because of rejected documents words it (states.documents_outcome)
REJECTED = re.compile(r"^document (\d+) rejected: type text/html is not a document")


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Accounting:
    problems: Counter[str] = field(default_factory=Counter)  # category -> how many
    examples: dict[str, list[str]] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    gave_up: list[tuple[str, int, int | None]] = field(default_factory=list)  # ref, job, doc

    def problem(self, category: str, example: str) -> None:
        self.problems[category] += 1
        shown = self.examples.setdefault(category, [])
        if len(shown) < 5:
            shown.append(example)

    def report(self) -> str:
        lines = []
        for category, n in self.problems.most_common():
            lines.append(f"{n} x {category}")
            lines += [f"      e.g. {e}" for e in self.examples[category]]
        return "\n".join(lines)


def account(monitor: Monitor, subs: list[Submission], stats: dict[str, Any],
            records: list[dict[str, Any]]) -> Accounting:
    """Check every submission end to end; collect every problem (not just the first)."""
    acc = Accounting()
    jobs = {r["reference"]: r for r in monitor.query(
        "SELECT id, reference, status, phase, attempts, partner_record_id, key_generation,"
        " last_error, lease_owner FROM {p}formrelay_jobs")}
    docs: dict[int, list[dict[str, Any]]] = {}
    for d in monitor.query("SELECT id, job_id, position, status, attempts, partner_document_id,"
                           " sha256, last_error, lease_owner FROM {p}formrelay_documents"
                           " ORDER BY id"):
        docs.setdefault(int(d["job_id"]), []).append(d)
    by_id = {r["id"]: r for r in records}
    keys = Counter(r["idempotency_key"] for r in records)

    # the partner created each record exactly once, and nothing else
    if stats["records_created"] != len(subs):
        acc.problem("records created at the partner != submissions",
                    f"{stats['records_created']} created for {len(subs)} submissions")
    for key, n in keys.items():
        if n > 1:
            acc.problem("two partner records with one idempotency key", f"{key}: {n}")
    expected_keys: set[str] = set()
    valid_total = 0
    for sub in subs:
        valid_total += sub.valid_count
        job = jobs.pop(sub.reference, None)
        if job is None:
            acc.problem("submission lost (no job row)", sub.reference)
            continue
        _check_job(acc, sub, job, docs.get(int(job["id"]), []), by_id, expected_keys)
    for reference in jobs:
        acc.problem("job the test did not submit", reference)
    for key in set(keys) - expected_keys:
        acc.problem("partner record no job points at (a duplicate)", key)
    if stats["documents_created"] != valid_total:
        acc.problem("documents created at the partner != valid documents",
                    f"{stats['documents_created']} created for {valid_total} valid documents")
    acc.figures.update(valid_documents=valid_total)
    for name, job_id, doc_id in acc.gave_up[:5]:
        acc.problem("the history of a step that ran out of attempts",
                    f"{name}: {step_history(monitor, job_id, doc_id)}")
    return acc


def step_history(monitor: Monitor, job_id: int, document_id: int | None) -> str:
    """What each failed attempt of one step was: random failure, outage, lease expiry..."""
    rows = monitor.query(
        "SELECT event, http_status, message FROM {p}formrelay_log WHERE job_id = %s AND"
        + (" document_id = %s" if document_id else " document_id IS NULL")
        + " ORDER BY id", (job_id, document_id) if document_id else (job_id,))
    seen: Counter[str] = Counter()
    for r in rows:
        message = r["message"] or ""
        cause = ("outage" if "(outage)" in message else "timeout" if "timed out" in message
                 else f"HTTP {r['http_status']}" if r["http_status"] else "")
        seen[f"{r['event']} {cause}".strip()] += 1
    return ", ".join(f"{k} x{n}" for k, n in seen.most_common())


def _check_job(acc: Accounting, sub: Submission, job: dict[str, Any],
               rows: list[dict[str, Any]], records: dict[str, dict[str, Any]],
               expected_keys: set[str]) -> None:
    ref, status = sub.reference, job["status"]
    error = job["last_error"] or ""
    if status in UNFINISHED:
        acc.problem(f"job left {status}", f"{ref} (phase {job['phase']}): {error[:120]}")
    elif status == "failed":
        reasons = error.split("; ")
        if GAVE_UP in error:
            acc.problem("job failed because its attempts ran out", f"{ref}: {error[:200]}")
            if job["phase"] == "record":
                acc.gave_up.append((ref, int(job["id"]), None))
        elif {m.group(1) if (m := REJECTED.match(r)) else r for r in reasons} != {
                str(p + 1) for p in sub.html_positions}:
            acc.problem("job failed, and not (only) because of a rejected document",
                        f"{ref}: {error[:200]}")
    elif status != "completed":
        acc.problem(f"job ended {status}", ref)
    if sub.html_positions and status == "completed":
        acc.problem("job with an HTML document completed", ref)
    if job["lease_owner"]:
        acc.problem("job still leased at the end", f"{ref}: {job['lease_owner']}")

    key = f"{ref}:{job['key_generation']}"
    expected_keys.add(key)
    record = records.get(job["partner_record_id"] or "")
    if record is None:
        acc.problem("job without its partner record", f"{ref}: {job['partner_record_id']!r}")
        return
    if record["idempotency_key"] != key:
        acc.problem("partner record under another idempotency key",
                    f"{ref}: record {record['id']} has {record['idempotency_key']!r}")

    # phase 2: one row per file; each valid one uploaded once, each HTML one rejected
    if len(rows) != len(sub.files):
        acc.problem("document rows != files", f"{ref}: {len(rows)} rows, {len(sub.files)} files")
    partner_docs = record["documents"]
    doc_keys = Counter(d["idempotency_key"] for d in partner_docs)
    if len(partner_docs) != sub.valid_count or any(n > 1 for n in doc_keys.values()):
        acc.problem("partner documents of a record != its valid documents (exactly once)",
                    f"{ref}: {len(partner_docs)} at the partner ({len(doc_keys)} keys),"
                    f" {sub.valid_count} valid")
    by_doc_id = {d["id"]: d for d in partner_docs}
    for row in rows:
        position, doc_status = int(row["position"]), row["status"]
        doc_error = row["last_error"] or ""
        if row["lease_owner"]:
            acc.problem("document still leased at the end", f"{ref}#{position}")
        if GAVE_UP in doc_error:
            acc.problem("document failed because its attempts ran out",
                        f"{ref}#{position}: {doc_error[:200]}")
            acc.gave_up.append((f"{ref}#{position}", int(job["id"]), int(row["id"])))
        if position in sub.html_positions:
            if doc_status != "rejected" or not doc_error.startswith("type text/html"):
                acc.problem("HTML document not rejected as HTML",
                            f"{ref}#{position}: {doc_status}: {doc_error[:160]}")
            continue
        if doc_status != "uploaded":
            acc.problem(f"valid document left {doc_status}",
                        f"{ref}#{position}: {doc_error[:160]}")
            continue
        want_key = f"{key}:document:{row['id']}"
        sent = by_doc_id.get(row["partner_document_id"] or "")
        if sent is None or sent["idempotency_key"] != want_key:
            acc.problem("uploaded document not at the partner under its key",
                        f"{ref}#{position}: {row['partner_document_id']!r}")
        elif position < len(sub.files) and sent["sha256"] != sha256_of(sub.files[position]):
            acc.problem("partner document differs from the file", f"{ref}#{position}")
