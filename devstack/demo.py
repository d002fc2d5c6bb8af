"""`make demo`: real WordPress form submissions delivered to a flaky partner, end to end.

1. Lays Debian's WordPress into var/ with the FormRelay Bridge and the WPForms
   emulator, against a fresh database (the bridge's activation makes the schema).
2. Starts the partner simulator in a flaky mode (some 503s and timeouts) and
   the sidecar (`formrelay run`, embedded SQLite queue).
3. Submits 25 intake forms through WordPress over HTTP, 1-3 documents each;
   one "document" is an HTML login page named .pdf. Halfway through, the
   partner has a short full outage.
4. Shows a progress bar until every job is completed or failed, then a
   summary, the wp-admin URL and its login, and stops everything.
   --keep-running leaves the stack up for exploring wp-admin (Ctrl-C ends it).
   --fhir makes the partner a FHIR R4 server (the simulator's fhir-r4 profile,
   the same flaky knobs; the sidecar's FORMRELAY_PARTNER_PROFILE=fhir-r4) and
   counts its side from its resources (devstack.demo_partner).

All data is made up; still, the demo prints counts and ids, never field values.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from devstack import wpforms
from devstack.demo_partner import DemoPartner
from devstack.samples import write_html_as_pdf, write_jpeg, write_pdf, write_png
from devstack.wordpress import LocalWordPress, free_port
from sidecar.partner_sim.server import SimControl

ROOT = Path(__file__).resolve().parents[1]
SUBMISSIONS = 25


def formrelay_bin() -> str:
    local = ROOT / ".venv" / "bin" / "formrelay"
    return str(local) if local.exists() else shutil.which("formrelay") or "formrelay"


def say(text: str) -> None:
    print(f"demo: {text}", flush=True)


@contextmanager
def process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def wait_for(url: str, proc: subprocess.Popen[bytes], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"demo: {what} exited with status {proc.returncode}")
        try:
            if requests.get(url, timeout=1).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise SystemExit(f"demo: {what} did not answer within {timeout:.0f} s")


def make_documents(uploads_tmp: Path, n: int, rng: random.Random) -> list[list[Path]]:
    """1-3 real documents per submission; submission 7 carries an HTML page named .pdf."""
    writers = (write_pdf, write_jpeg, write_png)
    sets = []
    for i in range(n):
        files = []
        for j in range(rng.randint(1, 3)):
            writer = writers[(i + j) % 3]
            ext = {write_pdf: "pdf", write_jpeg: "jpg", write_png: "png"}[writer]
            files.append(writer(uploads_tmp / f"s{i:02d}" / f"document-{j + 1}.{ext}",
                                rng.randint(4_000, 60_000)))
        if i == 7:
            files.append(write_html_as_pdf(uploads_tmp / f"s{i:02d}" / "referral.pdf", 3_000))
        sets.append(files)
    return sets


def counts(site: LocalWordPress) -> dict[str, int]:
    with site.db() as conn:
        cur = conn.cursor()
        cur.execute(f"SELECT status, COUNT(*) FROM {site.table_prefix}formrelay_jobs"
                    " GROUP BY status")
        return {status: int(n) for status, n in cur.fetchall()}


def summary(site: LocalWordPress) -> dict[str, Any]:
    p = site.table_prefix
    with site.db() as conn:
        cur = conn.cursor()
        cur.execute(f"SELECT status, COUNT(*) FROM {p}formrelay_documents GROUP BY status")
        documents = {status: int(n) for status, n in cur.fetchall()}
        cur.execute(f"SELECT COUNT(*) FROM {p}formrelay_log WHERE event LIKE '%%.retry'")
        retries = int(cur.fetchone()[0])
        cur.execute(f"SELECT COUNT(*) FROM {p}formrelay_log WHERE event = 'delivery.paused'")
        pauses = int(cur.fetchone()[0])
        cur.execute(f"SELECT id, last_error FROM {p}formrelay_jobs WHERE status = 'failed'")
        failed = [(int(i), str(e)) for i, e in cur.fetchall()]
    return {"documents": documents, "retries": retries, "failed": failed, "pauses": pauses}


def progress(done: int, total: int, width: int = 40) -> str:
    filled = int(width * done / total) if total else width
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"


def run(args: argparse.Namespace) -> int:
    rng = random.Random(7)
    secret = secrets.token_urlsafe(24)
    listen = f"127.0.0.1:{free_port()}"
    site = LocalWordPress(
        args.name, keep=args.keep,
        plugins=[ROOT / "wp_bridge_plugin", wpforms.plugin()],
        constants={"FORMRELAY_SIDECAR_URL": f"http://{listen}",
                   "FORMRELAY_SHARED_SECRET": secret})
    say("laying out WordPress with the FormRelay Bridge and the WPForms emulator ...")
    with site, tempfile.TemporaryDirectory(prefix="formrelay-demo-") as tmp:
        logs = site.dir / "logs"
        logs.mkdir(exist_ok=True)
        form_id = wpforms.create_form(site, "Patient intake", fields=[
            wpforms.name_field(1), wpforms.email_field(2), wpforms.text_field(3, "Date of birth"),
            wpforms.file_field(4, style="modern")])
        partner = DemoPartner(free_port(), fhir=args.fhir)
        env = {**os.environ,
               "WORDPRESS_DB_HOST": site.db_host_port, "WORDPRESS_DB_USER": site.db_user,
               "WORDPRESS_DB_PASSWORD": site.db_password, "WORDPRESS_DB_NAME": site.db_name,
               "WORDPRESS_TABLE_PREFIX": site.table_prefix, "FORMRELAY_SHARED_SECRET": secret,
               "FORMRELAY_LISTEN": listen,
               **partner.env(),
               "FORMRELAY_UPLOADS_DIR": str(site.uploads_dir),
               "FORMRELAY_DATA_DIR": str(site.dir / "sidecar-data"),
               # Demo time: retries, probes and sweeps seconds apart instead of minutes.
               "FORMRELAY_BACKOFF_BASE": "1", "FORMRELAY_BACKOFF_CAP": "8",
               "FORMRELAY_PROBE_MIN_SECONDS": "1", "FORMRELAY_PROBE_MAX_SECONDS": "4",
               "FORMRELAY_SWEEP_SECONDS": "5", "FORMRELAY_PARTNER_RPS": "30",
               "FORMRELAY_PARTNER_CONCURRENCY": "6",
               "FORMRELAY_READ_TIMEOUT": "2", "FORMRELAY_WORKERS": "8"}
        with process(partner.sim_args(formrelay_bin()), env,
                     logs / "partner-sim.log") as sim_proc, \
                process([formrelay_bin(), "run"], env, logs / "sidecar.log") as sidecar:
            sim = SimControl(partner.root)
            wait_for(f"{partner.root}/_sim/health", sim_proc, "the partner simulator")
            wait_for(f"http://{listen}/readyz", sidecar, "the sidecar")
            say(f"WordPress at {site.url}/ (database {site.db_name}), partner simulator"
                f" ({partner.label}) on port {partner.port}, sidecar on {listen}")
            started = time.monotonic()
            documents = make_documents(Path(tmp), SUBMISSIONS, rng)
            submit_ms = []
            for i, files in enumerate(documents):
                if i == SUBMISSIONS // 2:
                    sim.configure(outage_seconds=6)
                    say("the partner goes down for 6 seconds ...")
                result = wpforms.submit(site.url, form_id, {
                    "1": {"first": "Demo", "last": f"Person {i + 1:02d}"},
                    "2": f"demo{i + 1:02d}@example.org", "3": f"19{50 + i}-01-01"},
                    files={"4": files})
                submit_ms.append(result.elapsed_s * 1000)
            say(f"{SUBMISSIONS} submissions sent through WordPress (median"
                f" {sorted(submit_ms)[len(submit_ms) // 2]:.0f} ms each)")
            deadline = time.monotonic() + args.timeout
            tty, shown = sys.stdout.isatty(), -1
            while True:
                now = counts(site)
                done = now.get("completed", 0) + now.get("failed", 0)
                if tty:  # redraw in place; in a log, one line per change
                    print(f"\r  delivering {progress(done, SUBMISSIONS)}", end="", flush=True)
                elif done != shown:
                    print(f"  delivering {progress(done, SUBMISSIONS)}", flush=True)
                shown = done
                if done >= SUBMISSIONS or time.monotonic() > deadline:
                    break
                if sidecar.poll() is not None:
                    raise SystemExit("\ndemo: the sidecar exited; see " + str(logs))
                time.sleep(0.25)
            if tty:
                print()
            elapsed = time.monotonic() - started
            totals = summary(site)
            report(now, totals, partner.rows(sim), elapsed, site)
            if args.keep_running:
                say("the stack keeps running; Ctrl-C stops it")
                try:
                    sidecar.wait()
                except KeyboardInterrupt:
                    print()
        say("stopped; " + (f"site kept in {site.dir}" if args.keep
                           else "the site and its database are removed"))
    return 0 if done >= SUBMISSIONS else 1


def report(jobs: dict[str, int], result: dict[str, Any], partner: list[tuple[str, str]],
           elapsed: float, site: LocalWordPress) -> None:
    """The summary; `partner`: the lines on what the partner holds (DemoPartner.rows)."""
    docs = result["documents"]
    rows = [
        ("submissions delivered", f"{jobs.get('completed', 0)} of {SUBMISSIONS}"),
        ("submissions failed", f"{jobs.get('failed', 0)}"
         + "".join(f"\n{'':35}job {i}: {e[:90]}" for i, e in result["failed"])),
        ("documents uploaded", str(docs.get("uploaded", 0))),
        ("documents rejected", str(docs.get("rejected", 0))),
        ("retries (all steps)", str(result["retries"])),
        *partner,
        ("outage pauses", str(result["pauses"])),
        ("time to deliver everything", f"{elapsed:.1f} s"),
    ]
    print("\nFormRelay demo summary")
    for label, value in rows:
        print(f"  {label:<32} {value}")
    print(f"\n  dashboard  {site.url}/wp-admin/admin.php?page=formrelay"
          f"   login: {site.admin_user} / {site.admin_password}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.splitlines()[0])
    parser.add_argument("--keep-running", action="store_true",
                        help="keep WordPress, the sidecar and the simulator up after the summary")
    parser.add_argument("--keep", action="store_true",
                        help="leave the WordPress site and its database in place afterwards")
    parser.add_argument("--name", default="demo", help="site name: var/wp-NAME (default: demo)")
    parser.add_argument("--fhir", action="store_true",
                        help="the partner is a FHIR R4 server (the simulator's fhir-r4 profile)")
    parser.add_argument("--timeout", type=float, default=240,
                        help="give up waiting for deliveries after this many seconds")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
