"""How fast the wp-admin dashboard renders with a big history, measured through WordPress.

One local WordPress (Debian's 6.1 on `php -S`) with the FormRelay Bridge, and
`formrelay web` on the same database. The FormRelay tables get --jobs jobs
(statuses, forms and dates spread out; one document each) and --logs log rows.
A logged-in admin then GETs each screen --runs times; the script prints the
median and p90 of each, through WordPress and (for the breakdown) straight
from the sidecar's signed view route. Target: median <= 150 ms through
WordPress for the overview and for the jobs list, filters and search included.

    .venv/bin/python bench/dashboard.py [--jobs 100000] [--logs 1000000] [--runs 30]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.sidecar_web import sidecar_web
from devstack.wordpress import LocalWordPress, free_port
from sidecar import signing

ROOT = Path(__file__).resolve().parents[1]
TARGET_MS = 150.0
STATUSES = ("completed",) * 85 + ("failed",) * 6 + ("cancelled",) * 2 + ("retrying",) * 4 + (
    "pending",) * 3

# Ten digits, joined k times: 10**k generated rows on MariaDB and MySQL alike.
DIGITS = "(SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL" \
         " SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL" \
         " SELECT 8 UNION ALL SELECT 9)"


def numbers(count: int) -> str:
    """A derived table `n` holding 1..count."""
    places = max(1, len(str(count - 1)))
    joined = ", ".join(f"{DIGITS} d{i}" for i in range(places))
    expr = " + ".join(f"d{i}.d * {10 ** i}" for i in range(places))
    return f"(SELECT {expr} + 1 AS n FROM {joined} HAVING n <= {count})"


def fill(site: LocalWordPress, jobs: int, logs: int) -> None:
    p = site.table_prefix
    statuses = "ELT(1 + (n.n * 7919) % 100, " + ", ".join(f"'{s}'" for s in STATUSES) + ")"
    with site.db() as conn:
        cur = conn.cursor()
        cur.execute("SET SESSION foreign_key_checks = 0, unique_checks = 0")
        cur.execute(
            f"INSERT INTO {p}formrelay_jobs (reference, form_id, entry_id, snapshot, status, phase,"
            " attempts, max_attempts, partner_record_id, last_error, created_at, completed_at,"
            " failed_at, updated_at, next_attempt_at)"
            " SELECT CONCAT('wpforms:', 1 + s.n % 7, ':', s.n), 1 + s.n % 7, s.n, NULL, s.status,"
            " IF(s.status = 'completed', 'done', 'record'), 1 + s.n % 3, 10,"
            " IF(s.status = 'completed', CONCAT('pat_', LPAD(s.n, 8, '0')), NULL),"
            " IF(s.status IN ('failed', 'retrying'), CONCAT('HTTP 422: field ',"
            "  ELT(1 + s.n % 4, 'email', 'date_of_birth', 'postcode', 'phone'),"
            "  ' is invalid (case ', s.n, ')'), NULL),"
            " s.created, IF(s.status = 'completed', s.created + INTERVAL 20 SECOND, NULL),"
            " IF(s.status = 'failed', s.created + INTERVAL 90 SECOND, NULL),"
            " s.created + INTERVAL 20 SECOND,"
            " IF(s.status IN ('pending', 'retrying'), UTC_TIMESTAMP(3), NULL)"
            # ids in date order: 30 days spread over the ids, the newest in the last minutes
            f" FROM (SELECT n.n, {statuses} AS status, UTC_TIMESTAMP(3) - INTERVAL"
            f"  ({jobs} - n.n) * 43200 DIV {jobs} MINUTE AS created FROM {numbers(jobs)} n) s"
            " ORDER BY s.n")
        cur.execute(
            f"INSERT INTO {p}formrelay_documents (job_id, field_id, position, original_name, path,"
            " size, detected_type, status, attempts, max_attempts, created_at, updated_at)"
            " SELECT id, '4', 0, 'referral.pdf', CONCAT('/srv/uploads/', id, '.pdf'), 120000,"
            " 'application/pdf', IF(status = 'completed', 'uploaded', 'pending'), 1, 10,"
            f" created_at, updated_at FROM {p}formrelay_jobs")
        cur.execute(
            f"INSERT INTO {p}formrelay_log (job_id, level, event, message, attempt, http_status,"
            " duration_ms, created_at)"
            f" SELECT 1 + (n.n * 7) % {jobs},"
            " ELT(1 + n.n % 10, 'info', 'info', 'info', 'info', 'info', 'info', 'warning',"
            "  'warning', 'error', 'info'),"
            " ELT(1 + n.n % 5, 'record.retry', 'record.sent', 'document.uploaded', 'job.completed',"
            "  'document.retry'),"
            " CONCAT('attempt ', 1 + n.n % 3, ': HTTP ', ELT(1 + n.n % 3, '503', '201', '504'),"
            "  ' from partner, request ', n.n),"
            " 1 + n.n % 3, ELT(1 + n.n % 3, 503, 201, 504), 40 + n.n % 400,"
            f" UTC_TIMESTAMP(3) - INTERVAL ({logs} - n.n) * 43200 DIV {logs} MINUTE"
            f" FROM {numbers(logs)} n")
        # Rows written around the store: count them as migration 0008 seeds its counts table.
        cur.execute(f"DELETE FROM {p}formrelay_counts")
        cur.execute(f"INSERT INTO {p}formrelay_counts (form_id, status, slot, n)"
                    f" SELECT form_id, status, 0, COUNT(*) FROM {p}formrelay_jobs"
                    " WHERE status IN ('completed', 'failed', 'cancelled')"
                    " GROUP BY form_id, status")
        conn.commit()
        cur.execute(f"ANALYZE TABLE {p}formrelay_jobs, {p}formrelay_documents, {p}formrelay_log")
        cur.fetchall()


def login(site: LocalWordPress) -> requests.Session:
    session = requests.Session()
    session.get(f"{site.url}/wp-login.php", timeout=30)
    resp = session.post(f"{site.url}/wp-login.php", timeout=30, allow_redirects=False,
                        data={"log": site.admin_user, "pwd": site.admin_password,
                              "wp-submit": "Log In", "testcookie": "1",
                              "redirect_to": f"{site.url}/wp-admin/"})
    if resp.status_code != 302:
        raise SystemExit(f"login failed: HTTP {resp.status_code}")
    return session


def timed(get: Any, runs: int) -> tuple[list[float], str]:
    samples, body = [], ""
    for i in range(runs + 2):
        started = time.perf_counter()
        resp = get()
        elapsed = (time.perf_counter() - started) * 1000
        if resp.status_code != 200:
            raise SystemExit(f"HTTP {resp.status_code} from {resp.url}: {resp.text[:300]}")
        body = resp.text
        if i >= 2:  # the first two warm PHP's opcode cache and the buffer pool
            samples.append(elapsed)
    return samples, body


def screens(jobs: int) -> list[tuple[str, str]]:
    newest = f"wpforms:{1 + jobs % 7}:{jobs}"
    return [
        ("overview", "view=overview"),
        ("jobs: all (page 1)", "view=jobs"),
        ("jobs: failed", "view=jobs&status=failed"),
        ("jobs: form 3, last 7 days", "view=jobs&form_id=3&from="
         + time.strftime("%Y-%m-%d", time.gmtime(time.time() - 7 * 86400))),
        ("jobs: search reference", f"view=jobs&search={newest}"),
        ("jobs: search error text", "view=jobs&search=postcode"),
        ("jobs: search a rare error word", f"view=jobs&search=case+{jobs - 6}"),
        ("jobs: sorted by attempts, page 50", "view=jobs&orderby=attempts&order=asc&paged=50"),
        ("logs: newest", "view=logs"),
        ("logs: errors, search", "view=logs&level=error&search=504"),
    ]


def sidecar_get(listen: str, secret: str, query: str) -> requests.Response:
    name, _, rest = query.partition("&")
    path = f"/admin/v1/view/{name.removeprefix('view=')}" + (f"?{rest}" if rest else "")
    ts, nonce = str(int(time.time())), secrets.token_hex(16)
    return requests.get(f"http://{listen}{path}", timeout=30, headers={
        "X-FormRelay-Timestamp": ts, "X-FormRelay-Nonce": nonce, "X-FormRelay-User": "bench",
        "X-FormRelay-Signature": signing.sign_admin(secret, ts, nonce, "GET", path, "bench",
                                                    b"")})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--logs", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    secret = secrets.token_urlsafe(24)
    listen = f"127.0.0.1:{free_port()}"
    site = LocalWordPress(
        f"bench-dash-{secrets.token_hex(3)}", plugins=[ROOT / "wp_bridge_plugin"],
        db_host=os.environ.get("FORMRELAY_TEST_DB_HOST", "127.0.0.1:3306").split(":")[0],
        db_user=os.environ.get("FORMRELAY_TEST_DB_USER", "root"),
        db_password=os.environ.get("FORMRELAY_TEST_DB_PASSWORD", ""),
        constants={"FORMRELAY_SIDECAR_URL": f"http://{listen}",
                   "FORMRELAY_SHARED_SECRET": secret})
    with site, tempfile.TemporaryDirectory() as data:
        started = time.monotonic()
        fill(site, args.jobs, args.logs)
        print(f"filled {args.jobs:,} jobs and {args.logs:,} log rows in"
              f" {time.monotonic() - started:.0f} s", flush=True)
        with sidecar_web(site, secret, listen, data):
            session = login(site)
            rows = []
            for label, query in screens(args.jobs):
                url = f"{site.url}/wp-admin/admin.php?page=formrelay&{query}"
                through_wp, body = timed(lambda u=url: session.get(u, timeout=30), args.runs)
                if "formrelay-unreachable" in body:
                    raise SystemExit(f"{label}: the page says the sidecar is unreachable")
                direct, _ = timed(lambda q=query: sidecar_get(listen, secret, q), args.runs)
                rows.append((label, statistics.median(through_wp),
                             statistics.quantiles(through_wp, n=10)[8],
                             statistics.median(direct)))
    print(f"\n{'screen':<36} {'WP median':>10} {'WP p90':>8} {'sidecar':>8}  target")
    for label, median, p90, direct in rows:
        verdict = "met" if median <= TARGET_MS or not label.startswith(("overview", "jobs")) \
            else "MISSED"
        if label.startswith("logs"):
            verdict = "(no target)"
        print(f"{label:<36} {median:>8.1f}ms {p90:>6.1f}ms {direct:>6.1f}ms  {verdict}")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\n{args.runs} runs each, after 2 warm-up requests; {args.jobs:,} jobs,"
          f" {args.logs:,} log rows; load average at the end {load} ({os.cpu_count()} CPUs).")
    print(f"command: .venv/bin/python bench/dashboard.py --jobs {args.jobs} --logs {args.logs}"
          f" --runs {args.runs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
