"""A simulated partner API: slow, flaky and scriptable, served over real HTTP.

Tests, the demo, the chaos suite and benchmarks run the sidecar against it.

    sim = run_in_thread(latency_ms=200, error_rate=0.1, seed=7)   # port 0: a free port
    sim.url                     # http://127.0.0.1:PORT/api  (what FORMRELAY_PARTNER_URL takes)
    sim.script({"kind": "record", "status": 503}, {"kind": "record", "timeout": True})
    sim.stats()["records_created"], sim.records(), sim.configure(outage=True), sim.reset()
    sim.stop()

API (default shape, base path `/api`):
  POST {base}/patients                    JSON object -> 201 {"id": "P-000001", ...}
  POST {base}/patients/{id}/documents     multipart part `file` -> 201 {"id": "D-000001", ...}
  `Idempotency-Key` required (400); a replay answers the first 2xx again and creates
  nothing; the same key with another body (or file, or patient) -> 422.
  With a token, `Authorization: Bearer <token>` must match (401); `forbidden` -> 403.
  `"reject": true` in a record -> 422 whose message echoes a submitted value.
  A script item with `"echo": true` (status 422 unless given) answers quoting every text
  value of the record, or the uploaded file's name (sidecar.partner_sim.echo).
With `profile="fhir-r4"` (`--profile fhir-r4`) the API is a FHIR R4 server instead:
  transactions, Binary, DocumentReference, reads and /metadata (sidecar.partner_sim.fhir),
  with the same faults; GET /_sim/fhir[?bodies=1] shows what it created.
Control, no auth: GET /_sim/health|stats|records[?bodies=1]|fhir|config|script,
  POST /_sim/config (knobs, outage, outage_seconds) | /_sim/script | /_sim/reset.

Each API request: latency (+ jitter), then the first that applies of outage (503),
the next scripted item of its kind, and one draw against the rates (429, 503,
hang then 504, or handle then hang); then auth, key, validation, idempotent create.

Submodules: knobs (values, script items), echo (echoing answers), state (PartnerSim), app (WSGI),
fhir and fhir_store (the FHIR mode),
server (run_in_thread, RunningSim, SimControl), command (`formrelay partner-sim`).
This package loads them on first use, so `formrelay` starts fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sidecar.partner_sim.knobs import Forced, Knobs
    from sidecar.partner_sim.server import RunningSim, SimControl, run_in_thread
    from sidecar.partner_sim.state import PartnerSim

__all__ = ["Forced", "Knobs", "PartnerSim", "RunningSim", "SimControl", "run_in_thread"]

_HOME = {"Forced": "knobs", "Knobs": "knobs", "PartnerSim": "state", "RunningSim": "server",
         "SimControl": "server", "run_in_thread": "server"}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
