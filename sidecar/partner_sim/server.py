"""Serving a PartnerSim with waitress in a background thread, and its control client.

`run_in_thread()` binds (port 0 picks a free port), serves from a thread and
returns a RunningSim; `stop()` cuts latency and hangs short, lets the answers
that are still in flight go out (for a moment at most), then closes every
connection. `SimControl` drives any simulator, in-process or not, over /_sim/.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import requests
from waitress import wasyncore
from waitress.server import create_server

from sidecar.partner_sim.state import PartnerSim

DEFAULT_THREADS = 32


def parse_listen(listen: str) -> tuple[str, int]:
    """`host:port` (IPv6 in brackets) as (host, port); port 0 means any free port."""
    host, sep, port = listen.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"listen address must be host:port, e.g. 127.0.0.1:9100 (got {listen!r})")
    return host, int(port)


class SimControl:
    """The /_sim/ control API of a simulator at `root` (http://host:port)."""

    def __init__(self, root: str, timeout: float = 10.0) -> None:
        self.root = root.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, what: str, payload: Any = None, **params: str) -> Any:
        response = requests.request(method, f"{self.root}/_sim/{what}", json=payload,
                                    params=params, timeout=self.timeout)
        if response.status_code != 200:
            raise ValueError(f"{method} /_sim/{what}: HTTP {response.status_code}: "
                             f"{response.text[:200]}")
        return response.json()

    def health(self) -> dict[str, Any]:
        return dict(self._call("GET", "health"))

    def stats(self) -> dict[str, Any]:
        return dict(self._call("GET", "stats"))

    def records(self, bodies: bool = False) -> list[dict[str, Any]]:
        return list(self._call("GET", "records", **({"bodies": "1"} if bodies else {})))

    def fhir(self, bodies: bool = False) -> dict[str, Any]:
        """The fhir-r4 profile's resources: created/matched per type, ids, binaries."""
        return dict(self._call("GET", "fhir", **({"bodies": "1"} if bodies else {})))

    def config(self) -> dict[str, Any]:
        return dict(self._call("GET", "config"))

    def configure(self, **knobs: Any) -> dict[str, Any]:
        return dict(self._call("POST", "config", knobs))

    def script(self, *items: dict[str, Any]) -> int:
        return int(self._call("POST", "script", list(items))["pending"])

    def reset(self) -> None:
        self._call("POST", "reset")

    def tokens(self) -> dict[str, Any]:
        """SMART token requests: issued, refused (and by OAuth error), live, expired_by_control."""
        return dict(self._call("GET", "tokens"))

    def expire_tokens(self) -> int:
        """End every access token the simulator issued; how many were live."""
        return int(self._call("POST", "tokens/expire")["expired"])


class RunningSim(SimControl):
    """A simulator served from a thread of this process; `url` includes the base path."""

    def __init__(self, sim: PartnerSim, listen: str, threads: int) -> None:
        host, port = parse_listen(listen)
        if not 1 <= threads <= 1024:
            raise ValueError("threads must be between 1 and 1024")
        self.sim = sim
        self._server = create_server(
            sim.create_app(), host=host, port=port, threads=threads,
            ident="formrelay-partner-sim", connection_limit=max(1000, 4 * threads),
            # lets a hanging request notice that its client gave up (frees the thread)
            channel_request_lookahead=1)
        shown = f"[{host}]" if ":" in host else host
        super().__init__(f"http://{shown}:{self._server.effective_port}")
        self.port = int(self._server.effective_port)
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"partner-sim:{self.port}",
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return self.root + self.sim.knobs.base

    def _loop(self) -> None:
        server_map = self._server._map
        try:
            while not self._halt.is_set():
                wasyncore.loop(timeout=0.05, use_poll=True, map=server_map, count=1)
        finally:  # closed from this thread: nobody else iterates the map
            wasyncore.close_all(server_map)
            self._server.task_dispatcher.shutdown(cancel_pending=True, timeout=2)

    def stop(self, grace: float = 2.0) -> None:
        """Stop serving; waits `grace` seconds at most for answers still being written."""
        if self._halt.is_set():
            return
        self.sim.stopping.set()
        deadline = time.monotonic() + grace
        while self._busy() and time.monotonic() < deadline:
            time.sleep(0.01)
        self._halt.set()
        self._thread.join(grace + 5)

    def _busy(self) -> bool:
        """Requests being handled or queued, or answers not yet written out."""
        tasks = self._server.task_dispatcher
        if tasks.active_count or tasks.queue:
            return True
        return any(getattr(channel, "total_outbufs_len", 0)
                   for channel in list(self._server._map.values()))

    def __enter__(self) -> RunningSim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_in_thread(listen: str = "127.0.0.1:0", *, threads: int = DEFAULT_THREADS,
                  **knobs: Any) -> RunningSim:
    """Start a fresh simulator (knobs as in Knobs, plus outage/outage_seconds) and serve it."""
    return RunningSim(PartnerSim(**knobs), listen, threads)
