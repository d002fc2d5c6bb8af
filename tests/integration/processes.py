"""Real `formrelay` processes for tests: a worker's environment, start, status, stop."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.conftest import QUEUE_SECRET, TEST_DB_HOST, TEST_DB_PASSWORD, TEST_DB_USER, wait_until
from tests.integration.test_cli import formrelay_bin


def worker_env(db_name: str, partner_url: str, uploads: Path, tmp_path: Path,
               **more: str) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"], "WORDPRESS_DB_HOST": TEST_DB_HOST,
        "WORDPRESS_DB_USER": TEST_DB_USER, "WORDPRESS_DB_PASSWORD": TEST_DB_PASSWORD,
        "WORDPRESS_DB_NAME": db_name, "FORMRELAY_PARTNER_URL": partner_url,
        "FORMRELAY_UPLOADS_DIR": str(uploads), "FORMRELAY_DATA_DIR": str(tmp_path / "data"),
        "FORMRELAY_SHARED_SECRET": QUEUE_SECRET,
        "FORMRELAY_WORKERS": "2", "FORMRELAY_RECONCILE_DAYS": "0", **more,
    }


def start_worker(env: dict[str, str], own_group: bool = False) -> subprocess.Popen[str]:
    """`formrelay worker`; with `own_group`, in a process group of its own (for killpg)."""
    return subprocess.Popen([formrelay_bin(), "worker"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=own_group)


def run_worker_until(env: dict[str, str], done: Callable[[], bool], what: str,
                     timeout: float = 60) -> str:
    """Run `formrelay worker` until `done()`, stop it with SIGINT (exit 0), return its output."""
    worker = start_worker(env)
    try:
        def finished() -> bool:
            assert worker.poll() is None, "the worker exited"
            return done()

        wait_until(finished, timeout, what)
        worker.send_signal(signal.SIGINT)
        assert worker.wait(timeout=30) == 0
    finally:
        output = stop(worker)
    return output


def status(env: dict[str, str]) -> str:
    """`formrelay status`'s text; its exit is the Nagios severity (0-2), never 3 (unknown)."""
    done = subprocess.run([formrelay_bin(), "status"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode in (0, 1, 2), done.stdout + done.stderr
    return done.stdout


def stop(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    return proc.stdout.read() if proc.stdout else ""
