"""The partners FormRelay delivers to: one from the flat settings, or several by name.

One partner (as before): FORMRELAY_PARTNER_URL, FORMRELAY_PARTNER_TOKEN,
FORMRELAY_PARTNER_AUTH, FORMRELAY_PARTNER_PROFILE and the rest make a partner
named "default". Several: tables in the TOML file (FORMRELAY_CONFIG), one per
partner, by name:

    [partners.intake]
    url = "https://pm.example.org/api"
    token_file = "/run/secrets/intake_token"

    [partners.ehr]
    url = "https://ehr.example.org/fhir"
    profile = "fhir-r4"
    auth = "smart-backend"
    smart_client_id = "formrelay"
    smart_token_url = "https://ehr.example.org/auth/token"
    smart_private_key_file = "/run/secrets/ehr_key.pem"

The first table is the default partner: a form with no partner chosen, and
every job captured before partners had names, goes there. A key left out of a
table takes the flat setting's value (`connect_timeout`, `partner_rps`...), so
the environment still sets what all partners share. Setting both the tables
and FORMRELAY_PARTNER_URL is refused: one place says where submissions go.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sidecar import config_parsers as p
from sidecar.partner_profile import PARTNER_NAME

DEFAULT_NAME = "default"
PARTNERS_ROW = "partners"  # formrelay_meta: the names and profiles, for the plugin
PROFILES = ("default", "fhir-r4")
DEFAULT_IDENTIFIER_SYSTEM = "urn:formrelay:reference"
SMART_NEEDS = ("smart_client_id", "smart_token_url", "smart_private_key_file")


@dataclass(frozen=True)
class PartnerConfig:
    """One partner's settings. `token` is a secret: never in repr."""

    name: str
    url: str
    profile: str = "default"
    auth: str = "bearer"  # bearer | none | header:<Name> | smart-backend
    token: str = field(default="", repr=False)
    record_path: str = "/patients"
    document_path: str = "/patients/{id}/documents"
    id_field: str = "id"
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    deadline: float = 120.0
    concurrency: int = 4
    rps: float = 10.0
    probe: tuple[str, str] = ("HEAD", "/")
    fhir_identifier_system: str = DEFAULT_IDENTIFIER_SYSTEM
    smart_client_id: str = ""
    smart_token_url: str = ""
    smart_private_key_file: str = ""
    smart_key_id: str = ""
    smart_scopes: str = ""


# Each table key: (the flat setting whose value it defaults to, its parser).
KEYS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "url": ("partner_url", p.http_url),
    "profile": ("partner_profile", p.choice(*PROFILES)),
    "auth": ("partner_auth", p.auth),
    "token": ("partner_token", p.text),
    "record_path": ("record_path", p.url_path),
    "document_path": ("document_path", p.document_path),
    "id_field": ("id_field", p.text),
    "connect_timeout": ("connect_timeout", p.float_range(0.1, 120)),
    "read_timeout": ("read_timeout", p.float_range(0.1, 600)),
    "deadline": ("partner_deadline", p.float_range(1, 3600)),
    "concurrency": ("partner_concurrency", p.int_range(0, 256)),
    "rps": ("partner_rps", p.float_range(0, 10000)),
    "probe": ("partner_probe", p.probe),
    "allow_insecure": ("allow_insecure_partner", p.flag),
    "fhir_identifier_system": ("fhir_identifier_system", p.text),
    "smart_client_id": ("smart_client_id", p.text),
    "smart_token_url": ("smart_token_url", p.http_url),
    "smart_private_key_file": ("smart_private_key_file", p.text),
    "smart_key_id": ("smart_key_id", p.text),
    "smart_scopes": ("smart_scopes", p.text),
}
FIELDS = {"url", "profile", "auth", "token", "record_path", "document_path", "id_field",
          "connect_timeout", "read_timeout", "deadline", "concurrency", "rps", "probe",
          "fhir_identifier_system", "smart_client_id", "smart_token_url",
          "smart_private_key_file", "smart_key_id", "smart_scopes"}


FHIR_PROBE = ("GET", "/metadata")  # a FHIR server's CapabilityStatement


def from_flat(values: Mapping[str, Any], probe_set: bool = True) -> PartnerConfig:
    """The one partner of the flat settings, named "default" (`probe_set`: the probe was
    given, else a fhir-r4 partner is probed with GET /metadata)."""
    made = PartnerConfig(DEFAULT_NAME, **{k: values[flat] for k, (flat, _) in KEYS.items()
                                          if k in FIELDS and flat in values})
    return made if probe_set or made.profile != "fhir-r4" else replace(made, probe=FHIR_PROBE)


def from_tables(tables: Any, flat: Mapping[str, Any], where: str
                ) -> tuple[tuple[PartnerConfig, ...], list[str]]:
    """The `[partners.NAME]` tables: (partners in file order, problems, one line each)."""
    if not isinstance(tables, dict) or not tables:
        return (), [f"{where}: [partners] must hold at least one [partners.NAME] table"]
    found, problems = [], []
    for name, table in tables.items():
        at = f"{where}: [partners.{name}]"
        if not PARTNER_NAME.match(str(name)):
            problems.append(f"{at}: a partner name is 1-64 lower-case letters, digits, - or _")
            continue
        if not isinstance(table, dict):
            problems.append(f"{at} must be a table")
            continue
        made, wrong = _one(str(name), table, flat, at)
        problems += wrong
        if made is not None:
            found.append(made)
    return tuple(found), problems


def _one(name: str, table: dict[str, Any], flat: Mapping[str, Any], at: str
         ) -> tuple[PartnerConfig | None, list[str]]:
    problems = [f"{at}: unknown key {k!r}" for k in sorted(set(table) - set(KEYS) - {"token_file"})]
    values: dict[str, Any] = {}
    if "token" in table and "token_file" in table:
        problems.append(f"{at}: set token or token_file, not both")
    elif "token_file" in table:
        try:
            values["token"] = _read_secret(Path(str(table["token_file"])))
        except ValueError as exc:
            problems.append(f"{at}: token_file {exc}")
    for key, (flat_name, parse) in KEYS.items():
        if key in values:
            continue
        if key in table:
            raw = table[key]
            try:
                values[key] = parse(_text(raw))
            except ValueError as exc:
                shown = "" if key == "token" else f" (got {raw!r})"
                problems.append(f"{at}: {key} {exc}{shown}")
        elif key == "url":
            problems.append(f"{at}: url is required")
        elif flat_name in flat and key != "token":  # a token is never shared by default
            values[key] = flat[flat_name]
    if problems:
        return None, problems
    problems += check(values, at)
    insecure = p.insecure_partner_problem(values["url"], bool(values.get("allow_insecure")))
    problems += [f"{at}: {insecure}"] if insecure else []
    if "probe" not in table and values.get("profile") == "fhir-r4":
        values["probe"] = FHIR_PROBE
    kept = {k: v for k, v in values.items() if k in FIELDS}
    return (None if problems else PartnerConfig(name, **kept)), problems


def check(values: Mapping[str, Any], at: str) -> list[str]:
    """What a partner's settings lack together (each alone parsed)."""
    if values.get("auth") != "smart-backend":
        return []
    missing = [k for k in SMART_NEEDS if not values.get(k)]
    found = [f"{at}: auth smart-backend needs {', '.join(missing)}"] if missing else []
    key_file = values.get("smart_private_key_file")
    if key_file and not Path(key_file).is_file():
        found.append(f"{at}: smart_private_key_file {key_file} is not a readable file")
    return found


def _text(raw: Any) -> str:
    if isinstance(raw, bool):
        return "on" if raw else "off"
    if isinstance(raw, list):
        return ",".join(str(v) for v in raw)
    return str(raw)


def _read_secret(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8").removesuffix("\n").removesuffix("\r")
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the file: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: the file is not UTF-8 text") from None
    if not text:
        raise ValueError(f"{path}: the file is empty")
    return text


def keys(partners: tuple[PartnerConfig, ...]) -> list[tuple[PartnerConfig, str]]:
    """Each partner with its key: "" for the first, the default, whose pause row, slots
    and pace keep the names they had before partners had names; else its name."""
    return [(partner, "" if i == 0 else partner.name) for i, partner in enumerate(partners)]


def by_name(partners: tuple[PartnerConfig, ...], name: str) -> PartnerConfig:
    """The partner a job names; "" (no partner recorded) is the first, the default."""
    if not name:
        return partners[0]
    for partner in partners:
        if partner.name == name:
            return partner
    raise KeyError(name)
