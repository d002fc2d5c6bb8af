"""A WordPress site with the bridge and the WPForms emulator, the partner simulator,
and a real `formrelay run` that tests start and stop (end-to-end and browser tests)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from devstack import wpforms
from devstack.wordpress import LocalWordPress, free_port
from sidecar.partner_sim import RunningSim, run_in_thread
from tests.conftest import wait_until
from tests.integration.test_cli import formrelay_bin
from tests.wordpress.conftest import site as make_site

SECRET = "end-to-end-secret-0123456789"


class Stack:
    """WordPress with the bridge and the emulator; a sidecar that can be started and stopped."""

    def __init__(self, wp: LocalWordPress, listen: str, sim: RunningSim, data: Path) -> None:
        self.wp, self.listen, self.sim = wp, listen, sim
        self.env = {
            "PATH": os.environ["PATH"], "WORDPRESS_DB_HOST": wp.db_host_port,
            "WORDPRESS_DB_USER": wp.db_user, "WORDPRESS_DB_PASSWORD": wp.db_password,
            "WORDPRESS_DB_NAME": wp.db_name, "WORDPRESS_TABLE_PREFIX": wp.table_prefix,
            "FORMRELAY_SHARED_SECRET": SECRET, "FORMRELAY_LISTEN": listen,
            "FORMRELAY_PARTNER_URL": sim.url, "FORMRELAY_UPLOADS_DIR": str(wp.uploads_dir),
            "FORMRELAY_DATA_DIR": str(data), "FORMRELAY_BACKOFF_BASE": "0.2"}
        self.sidecar: subprocess.Popen[str] | None = None
        self.form = wpforms.create_form(wp, "Intake", fields=[
            wpforms.name_field(1), wpforms.email_field(2), wpforms.text_field(3, "Date of birth"),
            wpforms.file_field(4, style="modern")])

    def start(self) -> None:
        self.sidecar = subprocess.Popen([formrelay_bin(), "run"], env=self.env, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        wait_until(self._healthy, 30, "the sidecar to answer /readyz")

    def _healthy(self) -> bool:
        try:
            return requests.get(f"http://{self.listen}/readyz", timeout=1).ok
        except requests.RequestException:
            assert self.sidecar is not None and self.sidecar.poll() is None, "sidecar exited"
            return False

    def stop(self) -> str:
        if self.sidecar is None:
            return ""
        self.sidecar.terminate()
        self.sidecar.wait(timeout=30)
        out = self.sidecar.stdout.read() if self.sidecar.stdout else ""
        self.sidecar = None
        return out

    def jobs(self, where: str = "1=1", *args: Any) -> list[dict[str, Any]]:
        with self.wp.db() as conn:
            cur = conn.cursor(dictionary=True)
            cur.execute(f"SELECT * FROM {self.wp.table_prefix}formrelay_jobs WHERE {where}"
                        " ORDER BY id", args)
            return list(cur.fetchall())

    def log(self, job_id: int) -> list[str]:
        with self.wp.db() as conn:
            cur = conn.cursor()
            cur.execute(f"SELECT event, message FROM {self.wp.table_prefix}formrelay_log"
                        " WHERE job_id = %s ORDER BY id", (job_id,))
            return [f"{e}: {m}" for e, m in cur.fetchall()]

    def submit(self, files: list[Path], **kw: Any) -> wpforms.Submitted:
        values = {"1": {"first": "Jane", "last": "Doe"}, "2": "jane@example.com",
                  "3": "1980-02-01"}
        return wpforms.submit(self.wp.url, self.form, values, files={"4": files} if files
                              else None, **kw)

    def completed(self, reference: str) -> dict[str, Any] | None:
        rows = self.jobs("reference = %s AND status = 'completed'", reference)
        return rows[0] if rows else None


@contextmanager
def open_stack(data: Path, **constants: str) -> Iterator[Stack]:
    """A started WordPress (and simulator) with the sidecar stopped; all torn down after."""
    listen = f"127.0.0.1:{free_port()}"
    wp = make_site(plugins=[Path(__file__).resolve().parents[2] / "wp_bridge_plugin",
                            wpforms.plugin()],
                   constants={"FORMRELAY_SIDECAR_URL": f"http://{listen}",
                              "FORMRELAY_SHARED_SECRET": SECRET, **constants})
    sim = run_in_thread()
    with wp:
        running = Stack(wp, listen, sim, data)
        try:
            yield running
        finally:
            running.stop()
            sim.stop()
