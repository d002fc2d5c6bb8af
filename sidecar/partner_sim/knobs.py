"""The simulator's knobs and scripted responses: parsing and validation, no I/O.

Values come from JSON (`POST /_sim/config`, `POST /_sim/script`), from keyword
arguments (`run_in_thread(latency_ms=200)`) or from CLI flags; every source
goes through the same checks and a bad value is a ValueError naming the key.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

KINDS = ("record", "document")
TOKEN_KIND = "token"  # noqa: S105  (a kind, no secret: the SMART token endpoint)
# default: JSON records and multipart documents; fhir-r4: a FHIR R4 server
# (sidecar.partner_sim.fhir), its transactions of kind "record", Binary and
# DocumentReference creates of kind "document" (for scripts and stats)
PROFILES = ("default", "fhir-r4")
# Each request draws one number u in [0, 1); these fractions are consecutive,
# non-overlapping slices of that range, so each is exact and their sum is <= 1.
RATES = ("rate_limit_rate", "error_rate", "timeout_rate", "timeout_after_accept_rate")
# Not knobs but actions on the outage state (see PartnerSim.configure).
OUTAGE_KEYS = ("outage", "outage_seconds")


def _number(low: float = 0.0, high: float = math.inf) -> Callable[[str, Any], float]:
    def parse(name: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
                value):
            raise ValueError(f"{name} must be a number")
        if not low <= value <= high:
            raise ValueError(f"{name} must be between {low:g} and {high:g}")
        return float(value)

    return parse


def _whole(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a whole number >= 0")
    return value


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false")
    return value


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    return value


def _profile(name: str, value: Any) -> str:
    if value not in PROFILES:
        raise ValueError(f"{name} must be one of {', '.join(PROFILES)}")
    return str(value)


def _seed(name: str, value: Any) -> int | None:
    return None if value is None else _whole(name, value)


def _jwks(name: str, value: Any) -> dict[str, Any] | None:
    from sidecar.partner_sim.token import parse_jwks  # on use: PyJWT is not cheap to import

    return parse_jwks(name, value)


def _base(name: str, value: Any) -> str:
    text = _text(name, value).rstrip("/")
    if text and (not text.startswith("/") or any(c.isspace() or c in "?#" for c in text)):
        raise ValueError(f"{name} must be a path such as /api")
    return text


@dataclass(frozen=True)
class Knobs:
    base: str = "/api"  # path prefix of the partner API ("" for none)
    profile: str = "default"  # the API's shape: default | fhir-r4
    token: str = ""  # when set, `Authorization: Bearer <token>` must match (else 401)
    forbidden: bool = False  # authenticated requests get 403
    latency_ms: float = 0.0  # added to every API request
    jitter_ms: float = 0.0  # plus uniform 0..jitter_ms
    rate_limit_rate: float = 0.0  # fraction answered 429 with Retry-After
    error_rate: float = 0.0  # fraction answered 503
    timeout_rate: float = 0.0  # fraction that hang `hang_seconds`, then 504, creating nothing
    timeout_after_accept_rate: float = 0.0  # fraction that create, then hang
    retry_after: int = 1  # seconds, for 429s
    retry_after_date: bool = False  # send Retry-After as an HTTP date instead of seconds
    hang_seconds: float = 60.0
    seed: int | None = None  # reproducible randomness (None: from the OS)
    # SMART Backend Services (token.py): with a JWK Set, {base}/token issues access tokens
    # and every API request needs a live one (or the static token, when set too)
    jwks: dict[str, Any] | None = None
    client_id: str = "formrelay"  # the assertion's iss and sub
    token_seconds: int = 300  # an access token's life (its expires_in)

    def merged(self, changes: Mapping[str, Any]) -> Knobs:
        """A copy with `changes` applied; ValueError names the first bad key."""
        unknown = sorted(set(changes) - set(PARSERS))
        if unknown:
            raise ValueError(f"unknown knob(s): {', '.join(unknown)}")
        new = dataclasses.replace(
            self, **{name: PARSERS[name](name, value) for name, value in changes.items()})
        total = sum(getattr(new, rate) for rate in RATES)
        if total > 1 + 1e-9:
            raise ValueError(f"{' + '.join(RATES)} add up to {total:g}; at most 1")
        return new

    def public(self) -> dict[str, Any]:
        shown = dataclasses.asdict(self)
        shown["token"] = "***" if self.token else ""
        shown["jwks"] = None if self.jwks is None else [
            {k: v for k, v in key.items() if k in ("kty", "kid", "crv", "alg")}
            for key in self.jwks["keys"]]  # which keys, not their numbers
        return shown


PARSERS: dict[str, Callable[[str, Any], Any]] = {
    "base": _base, "profile": _profile, "token": _text, "forbidden": _flag,
    "latency_ms": _number(), "jitter_ms": _number(),
    **{rate: _number(0.0, 1.0) for rate in RATES},
    "retry_after": _whole, "retry_after_date": _flag,
    "hang_seconds": _number(0.0, 86400.0), "seed": _seed,
    "jwks": _jwks, "client_id": _text, "token_seconds": _whole,
}


def parse_outage(values: Mapping[str, Any]) -> tuple[bool | None, float | None]:
    """`outage` (true/false) and `outage_seconds` (an outage that ends by itself; 0 ends it)."""
    outage, seconds = values.get("outage"), values.get("outage_seconds")
    return (None if outage is None else _flag("outage", outage),
            None if seconds is None else _number(0.0, 86400.0)("outage_seconds", seconds))


@dataclass(frozen=True)
class Forced:
    """One forced response: from the script, the random rates or an outage."""

    kind: str
    status: int | None = None  # the status to answer (after the hang, for `timeout`)
    body: Any = None  # JSON to answer with, when has_body
    has_body: bool = False
    timeout: bool = False  # hang, create nothing, then answer `status` (default 504)
    accept_then_timeout: bool = False  # handle the request fully, then hang before answering
    retry_after: int | None = None
    retry_after_date: bool = False
    hang_seconds: float | None = None  # None: the hang_seconds knob
    source: str = "script"  # script | random | outage
    echo: bool = False  # answer `status` (422) quoting the request's values or file name

    @property
    def label(self) -> str:
        what = ("accept_then_timeout" if self.accept_then_timeout
                else "timeout" if self.timeout else str(self.status))
        return f"{self.source}:{what}"


SCRIPT_KEYS = frozenset({"kind", "status", "body", "timeout", "accept_then_timeout",
                         "retry_after", "retry_after_date", "hang_seconds", "count", "echo"})
MAX_SCRIPT_COUNT = 10_000


def parse_script(items: Any) -> list[Forced]:
    """Script items (a JSON object or a list of them) as Forced, `count` expanded."""
    if isinstance(items, Mapping):
        items = [items]
    if not isinstance(items, list):
        raise ValueError("the script must be a JSON object or a list of objects")
    parsed: list[Forced] = []
    for n, item in enumerate(items, 1):
        try:
            forced, count = _script_item(item)
        except ValueError as exc:
            raise ValueError(f"script item {n}: {exc}") from None
        parsed.extend([forced] * count)
    return parsed


def _script_item(item: Any) -> tuple[Forced, int]:
    if not isinstance(item, Mapping):
        raise ValueError("must be a JSON object")
    unknown = sorted(set(item) - SCRIPT_KEYS)
    if unknown:
        raise ValueError(f"unknown key(s): {', '.join(unknown)}")
    kind = item.get("kind")
    if kind not in (*KINDS, TOKEN_KIND):
        raise ValueError(f"kind must be one of {', '.join((*KINDS, TOKEN_KIND))}")
    status = item.get("status")
    if status is not None and (isinstance(status, bool) or not isinstance(status, int)
                               or not 200 <= status <= 599):
        raise ValueError("status must be an HTTP status between 200 and 599")
    timeout = _flag("timeout", item.get("timeout", False))
    accept = _flag("accept_then_timeout", item.get("accept_then_timeout", False))
    if accept and (timeout or status is not None or "body" in item):
        raise ValueError("accept_then_timeout takes no status, body or timeout")
    echo = _flag("echo", item.get("echo", False))
    if echo and (accept or timeout or "body" in item):
        raise ValueError("echo takes no body, timeout or accept_then_timeout")
    if echo and status is None:
        status = 422
    if not (accept or timeout or status is not None):
        raise ValueError("needs a status, timeout or accept_then_timeout")
    count = _whole("count", item.get("count", 1))
    if not 1 <= count <= MAX_SCRIPT_COUNT:
        raise ValueError(f"count must be between 1 and {MAX_SCRIPT_COUNT}")
    retry_after = item.get("retry_after")
    hang = item.get("hang_seconds")
    return Forced(
        kind=kind, status=status, body=item.get("body"), has_body="body" in item,
        timeout=timeout, accept_then_timeout=accept,
        retry_after=None if retry_after is None else _whole("retry_after", retry_after),
        retry_after_date=_flag("retry_after_date", item.get("retry_after_date", False)),
        hang_seconds=None if hang is None else _number(0.0, 86400.0)("hang_seconds", hang),
        echo=echo,
    ), count
