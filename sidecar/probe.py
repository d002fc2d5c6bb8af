"""The container's health probe: `python -m sidecar.probe [--worker] [PATH]` (stdlib only).

GETs PATH (default /readyz; /livez with --worker) on this container's own listener:
FORMRELAY_LISTEN, or FORMRELAY_WORKER_LISTEN with --worker. Exit status 0 on a 2xx,
else 1, with one line saying why (what Docker shows in `docker inspect`).

Without arguments (the image's HEALTHCHECK) it probes what the container runs, read
from PID 1's command line: `formrelay worker` its worker listener's /livez (nothing
to probe, exit 0, when FORMRELAY_WORKER_LISTEN is unset), else FORMRELAY_LISTEN's /readyz.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

DEFAULT_LISTEN = "127.0.0.1:8787"
TIMEOUT_SECONDS = 4.0


def local_url(listen: str, path: str) -> str:
    """host:port as a server binds it, as a client on the same host reaches it."""
    host, _, port = listen.rpartition(":")
    anywhere = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1",  # noqa: S104 (read, not bound)
                "[::]": "[::1]", "::": "[::1]"}
    host = anywhere.get(host, host)
    return f"http://{host}:{port}{path}"


def container_command(cmdline: Path = Path("/proc/1/cmdline")) -> str:
    """The formrelay command PID 1 runs ("" when it cannot be told)."""
    try:
        args = cmdline.read_bytes().split(b"\0")
    except OSError:
        return ""
    words = [a.decode(errors="replace") for a in args if a]
    for i, word in enumerate(words[:-1]):
        if Path(word).name == "formrelay":
            return words[i + 1]
    return ""


def target(argv: Sequence[str], env: Mapping[str, str], command: str) -> str | None:
    """The URL to probe, or None when this container has nothing to probe."""
    args = [a for a in argv if a != "--worker"]
    worker = "--worker" in argv or (not argv and command == "worker")
    path = args[0] if args else ("/livez" if worker else "/readyz")
    if not path.startswith("/"):
        path = "/" + path
    if worker:
        listen = env.get("FORMRELAY_WORKER_LISTEN", "")
        return local_url(listen, path) if listen else None
    return local_url(env.get("FORMRELAY_LISTEN") or DEFAULT_LISTEN, path)


def probe(url: str) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as answer:  # noqa: S310
            return True, f"{url}: HTTP {answer.status}"
    except urllib.error.HTTPError as exc:
        return False, f"{url}: HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        why = getattr(exc, "reason", exc)
        return False, f"{url}: no answer ({why})"


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    url = target(argv, os.environ if env is None else env, "" if argv else container_command())
    if url is None:
        print("formrelay worker without FORMRELAY_WORKER_LISTEN: nothing to probe")
        return 0
    ok, line = probe(url)
    print(line)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
