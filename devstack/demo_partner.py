"""The demo's partner: the simulator's flags, the sidecar's partner settings and the
summary's partner lines, for the default profile or, with `--fhir`, a FHIR R4 server.

Both modes use the same flaky knobs (503s, timeouts, requests accepted and then
timed out) and the same seed, so retries and absorbed duplicates show in either.
In FHIR mode the simulator serves `--profile fhir-r4` under FHIR_BASE and the
sidecar gets `FORMRELAY_PARTNER_PROFILE=fhir-r4`; the partner's side of the
summary is counted from its resources (`GET /_sim/fhir`): Patients for records,
DocumentReferences for documents, conditional creates that matched an existing
resource for the duplicates it absorbed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sidecar.partner_sim.server import SimControl

# The knobs of the flaky partner (as `formrelay partner-sim` flags), both modes.
FLAKY = ["--latency-ms", "40", "--jitter-ms", "60", "--error-rate", "0.08",
         "--timeout-rate", "0.04", "--timeout-after-accept-rate", "0.04",
         "--hang-seconds", "4", "--seed", "7"]
API_BASE = "/api"  # the simulator's default base path
FHIR_BASE = "/fhir"
FHIR_PROFILE = "fhir-r4"
FHIR_TYPES = ("Patient", "QuestionnaireResponse", "Binary", "DocumentReference")


@dataclass(frozen=True)
class DemoPartner:
    """The partner simulator on 127.0.0.1:`port`, FHIR R4 when `fhir`."""

    port: int
    fhir: bool = False

    @property
    def root(self) -> str:
        """Where the simulator's control API (/_sim/) lives."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The partner API's base URL, as the sidecar is given it."""
        return self.root + (FHIR_BASE if self.fhir else API_BASE)

    @property
    def label(self) -> str:
        return f"flaky, FHIR R4 at {FHIR_BASE}" if self.fhir else "flaky"

    def sim_args(self, formrelay: str) -> list[str]:
        args = [formrelay, "partner-sim", "--listen", f"127.0.0.1:{self.port}", *FLAKY]
        if self.fhir:
            args += ["--profile", FHIR_PROFILE, "--base", FHIR_BASE]
        return args

    def env(self) -> dict[str, str]:
        """The sidecar's partner settings."""
        env = {"FORMRELAY_PARTNER_URL": self.url}
        if self.fhir:
            env["FORMRELAY_PARTNER_PROFILE"] = FHIR_PROFILE
        return env

    def rows(self, sim: SimControl) -> list[tuple[str, str]]:
        """The summary's lines on what the partner holds, read from the simulator."""
        if not self.fhir:
            stats = sim.stats()
            dupes = stats.get("duplicates_suppressed", {})
            return [("partner records created", str(stats.get("records_created", 0))),
                    ("duplicates the partner absorbed",
                     str(sum(dupes.values()) if isinstance(dupes, dict) else dupes))]
        return fhir_rows(sim.fhir())


def fhir_rows(fhir: dict[str, Any]) -> list[tuple[str, str]]:
    """The FHIR simulator's `created`/`matched` counts per type as summary lines."""
    created: dict[str, int] = fhir.get("created", {})
    matched: dict[str, int] = fhir.get("matched", {})
    orphans = created.get("Binary", 0) - created.get("DocumentReference", 0)
    resources = ", ".join(f"{kind} {created.get(kind, 0)}" for kind in FHIR_TYPES)
    if orphans > 0:  # a retried document step uploads its Binary again (docs/fhir.md)
        resources += f"\n{'':35}{orphans} Binary unreferenced (a document step retried)"
    return [
        ("partner records created", f"{created.get('Patient', 0)} Patients"),
        ("partner documents created", f"{created.get('DocumentReference', 0)}"
                                      " DocumentReferences"),
        ("duplicates the partner absorbed", f"{sum(matched.values())}"
                                            " (conditional creates matched)"),
        ("FHIR resources created", resources),
    ]
