"""The FHIR mode's resources (sidecar.partner_sim.fhir): what was created, no HTTP.

Conditional create is by identifier only (`identifier=<system>|<value>`, what the
fhir-r4 client sends): every identifier of every created resource is indexed per
type, and a create whose criteria match answers the existing resource (200)
instead of making another (201). A transaction is applied under the lock as a
whole, so it is atomic as on a real server. Binaries keep their size, SHA-1 and
type, never their bytes. One lock guards it all; nothing slow happens under it.
"""

from __future__ import annotations

import copy
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Criteria = tuple[str, str]  # (identifier system, value)


@dataclass(frozen=True)
class BinaryInfo:
    content_type: str
    size: int
    sha1: str  # base64, as Attachment.hash


@dataclass(frozen=True)
class Created:
    """One create's result: 201 when made, 200 when the criteria matched an existing one."""

    resource_type: str
    id: str
    status: int
    resource: dict[str, Any]

    @property
    def location(self) -> str:
        return f"{self.resource_type}/{self.id}/_history/1"


@dataclass(frozen=True)
class NewEntry:
    """A transaction entry to create: its fullUrl (may be ""), resource and criteria."""

    full_url: str
    resource_type: str
    resource: dict[str, Any]
    criteria: Criteria | None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _resolve(value: Any, urls: dict[str, str]) -> Any:
    """The resource with each `reference` to a fullUrl of the Bundle made local."""
    if isinstance(value, dict):
        return {k: (urls.get(v, v) if k == "reference" and isinstance(v, str)
                    else _resolve(v, urls)) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, urls) for v in value]
    return value


class FhirStore:
    def __init__(self) -> None:
        self._lock = threading.RLock()  # `check` (see create) reads under it
        self._resources: dict[str, dict[str, dict[str, Any]]] = {}
        self._index: dict[tuple[str, str, str], str] = {}  # (type, system, value) -> id
        self._binaries: dict[str, BinaryInfo] = {}
        self._created: Counter[str] = Counter()
        self._matched: Counter[str] = Counter()

    # reads -------------------------------------------------------------------

    def read(self, resource_type: str, resource_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._resources.get(resource_type, {}).get(resource_id)
            return copy.deepcopy(found) if found is not None else None

    def binary(self, binary_id: str) -> BinaryInfo | None:
        with self._lock:
            return self._binaries.get(binary_id)

    def match(self, resource_type: str, criteria: Criteria | None) -> Created | None:
        with self._lock:
            return self._match_locked(resource_type, criteria)

    def counts(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {"created": dict(self._created), "matched": dict(self._matched)}

    def public(self, bodies: bool) -> dict[str, Any]:
        """Ids per type (and the resources themselves with `bodies`) for /_sim/fhir."""
        with self._lock:
            shown: dict[str, Any] = {
                "created": dict(self._created), "matched": dict(self._matched),
                "ids": {t: list(found) for t, found in self._resources.items()},
                "binaries": {i: {"size": b.size, "sha1": b.sha1,
                                 "content_type": b.content_type}
                             for i, b in self._binaries.items()}}
            if bodies:
                shown["resources"] = copy.deepcopy(self._resources)
            return shown

    # writes ------------------------------------------------------------------

    def add_binary(self, info: BinaryInfo) -> Created:
        with self._lock:
            resource = {"resourceType": "Binary", "contentType": info.content_type}
            created = self._create_locked("Binary", resource, None)
            self._binaries[created.id] = info
            return created

    def create(self, resource_type: str, resource: dict[str, Any], criteria: Criteria | None,
               check: Callable[[], str | None] = lambda: None) -> Created | str:
        """Match or create; `check` (a refusal's reason, or None) runs only when creating."""
        with self._lock:
            found = self._match_locked(resource_type, criteria)
            if found is not None:
                return found
            reason = check()
            return reason if reason else self._create_locked(resource_type, resource, criteria)

    def transaction(self, entries: list[NewEntry]) -> list[Created]:
        """Every entry matched or created, references to fullUrls resolved, atomically."""
        with self._lock:
            done = [self._match_locked(e.resource_type, e.criteria)
                    or self._create_locked(e.resource_type, e.resource, e.criteria)
                    for e in entries]
            urls = {e.full_url: f"{c.resource_type}/{c.id}"
                    for e, c in zip(entries, done, strict=True) if e.full_url}
            for n, made in enumerate(done):
                if made.status == 201:
                    of_type = self._resources[made.resource_type]
                    of_type[made.id] = _resolve(of_type[made.id], urls)
                    done[n] = Created(made.resource_type, made.id, 201,
                                      copy.deepcopy(of_type[made.id]))
            return done

    # under the lock -----------------------------------------------------------

    def _match_locked(self, resource_type: str, criteria: Criteria | None) -> Created | None:
        if criteria is None:
            return None
        found = self._index.get((resource_type, *criteria))
        if found is None:
            return None
        self._matched[resource_type] += 1
        resource = self._resources[resource_type][found]
        return Created(resource_type, found, 200, copy.deepcopy(resource))

    def _create_locked(self, resource_type: str, resource: dict[str, Any],
                       criteria: Criteria | None) -> Created:
        of_type = self._resources.setdefault(resource_type, {})
        new_id = str(len(of_type) + 1)
        stored = {**copy.deepcopy(resource), "resourceType": resource_type, "id": new_id,
                  "meta": {"versionId": "1", "lastUpdated": _now()}}
        of_type[new_id] = stored
        given = stored.get("identifier")
        for item in given if isinstance(given, list) else [given]:
            if isinstance(item, dict) and isinstance(item.get("value"), str):
                self._index.setdefault((resource_type, str(item.get("system", "")),
                                        item["value"]), new_id)
        if criteria is not None:
            self._index.setdefault((resource_type, *criteria), new_id)
        self._created[resource_type] += 1
        return Created(resource_type, new_id, 201, copy.deepcopy(stored))
