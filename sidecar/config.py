"""Settings from the environment and an optional TOML file.

Every setting has one name in TOML (`partner_url`) and one in the environment
(`FORMRELAY_PARTNER_URL`, or the official WordPress image's `WORDPRESS_DB_*`).
The environment wins over the file. Each command states which settings it
needs; `load` reports every problem at once, one line each, and never echoes a
secret's value.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sidecar.errors import ConfigError
from sidecar.payload import is_template_name

Parser = Callable[[str], Any]
REPO_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def _text(raw: str) -> str:
    return raw


def _number_range(cast: type[int] | type[float], low: float, high: float) -> Parser:
    noun = "a whole number" if cast is int else "a number"

    def show(n: float) -> str:
        return str(int(n)) if n == int(n) else f"{n:g}"

    def parse(raw: str) -> float:
        try:
            value = cast(raw)
        except ValueError:
            raise ValueError(f"must be {noun}") from None
        if not low <= value <= high:
            raise ValueError(f"must be between {show(low)} and {show(high)}")
        return value

    return parse


def _int_range(low: int, high: int) -> Parser:
    return _number_range(int, low, high)


def _float_range(low: float, high: float) -> Parser:
    return _number_range(float, low, high)


def _http_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http:// or https:// URL")
    return raw.rstrip("/")


LOOPBACK_HOSTS = frozenset({"localhost", "localhost.", "::1"})


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: traffic that never leaves the machine."""
    host = host.lower()
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def insecure_partner_problem(url: str, allowed: bool) -> str | None:
    """Why an http:// partner URL is refused (the token and every value would go in clear),
    or None. Loopback is allowed (tests, the demo); the URL itself is not repeated."""
    parts = urlsplit(url)
    if parts.scheme != "http" or allowed or is_loopback(parts.hostname or ""):
        return None
    return ("FORMRELAY_PARTNER_URL is http:// to a host that is not loopback: the partner token"
            " and the submissions would travel in clear; use https://, or set"
            " FORMRELAY_ALLOW_INSECURE_PARTNER=1 if that network is trusted")


def _redis_url(raw: str) -> str:
    """redis://[[user]:password@]host[:port][/db], rediss:// (TLS) the same, or
    unix://[[user]:password@]/path/to.sock[?db=N]. Errors never quote the URL."""
    try:
        parts = urlsplit(raw)
        port = parts.port  # ValueError when it is not a number in range
    except ValueError:
        raise ValueError("must be a redis://, rediss:// or unix:// URL with a valid port") from None
    if parts.scheme in ("redis", "rediss"):
        if not parts.hostname:
            raise ValueError(f"must name a host: {parts.scheme}://[:password@]host[:port][/db]")
        if parts.path.strip("/") and not parts.path.strip("/").isdigit():
            raise ValueError("must end with a database number (/0) or nothing")
    elif parts.scheme == "unix":
        if not parts.path.startswith("/") or parts.hostname or port is not None:
            raise ValueError("must be unix:///path/to/redis.sock (or unix://:password@/path...)")
    else:
        raise ValueError("must be a redis://, rediss:// or unix:// URL")
    return raw


def redis_location(url: str) -> str:
    """The Redis URL as start-up lines and errors may show it: no user, no password."""
    parts = urlsplit(url)
    where = parts.path if parts.scheme == "unix" else parts.netloc.rpartition("@")[2] + parts.path
    return f"{parts.scheme}://{where} ({'with' if parts.password else 'no'} password)"


def _host_port(raw: str) -> str:
    host, sep, port = raw.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("must be host:port, e.g. 127.0.0.1:8787")
    return raw


def _secret(raw: str) -> str:
    if len(raw) < 16:
        raise ValueError("must be at least 16 characters")
    return raw


def _table_prefix(raw: str) -> str:
    if not raw or not all(c.isalnum() or c == "_" for c in raw):
        raise ValueError("must be letters, digits and underscores, e.g. wp_")
    return raw


def _url_path(raw: str) -> str:
    if not raw.startswith("/"):
        raise ValueError("must be a path starting with /")
    return raw


def _document_path(raw: str) -> str:
    if "{id}" not in _url_path(raw):
        raise ValueError("must contain {id}, where the partner's record id goes")
    return raw


def _auth(raw: str) -> str:
    if raw not in ("bearer", "none") and not (raw.startswith("header:") and raw[7:].strip()):
        raise ValueError("must be bearer, none or header:<Header-Name>")
    return raw


def _types(raw: str) -> frozenset[str]:
    types = frozenset(t.strip().lower() for t in raw.split(",") if t.strip())
    if not types or not all("/" in t for t in types):
        raise ValueError("must be a comma-separated list of MIME types, e.g. application/pdf")
    return types


def _form_templates(raw: str) -> dict[int, str]:
    """`12=intake.json.j2, 14=referral.json.j2`: a payload template per form id."""
    mapping: dict[int, str] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        form, sep, name = item.partition("=")
        if not sep or not form.strip().isdigit() or not is_template_name(name.strip()):
            raise ValueError("must be form_id=template.json.j2 pairs separated by commas")
        mapping[int(form)] = name.strip()
    return mapping


def _flag(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be on or off (true/false, yes/no, 1/0)")


def _worker_type(raw: str) -> str:
    if raw not in ("thread", "process"):
        raise ValueError("must be thread or process")
    return raw


def _queue_name(raw: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", raw):
        raise ValueError("must be 1-64 letters, digits, dots, dashes or underscores")
    return raw


def _directory(raw: str) -> Path:
    path = Path(raw).expanduser()
    if not path.is_dir():
        raise ValueError("must be an existing directory")
    return path.resolve()


@dataclass(frozen=True)
class Setting:
    name: str
    env: str
    parse: Parser = _text
    default: str | None = None
    secret: bool = False
    empty: Any = ""  # the value when unset and not needed (no default, or an empty one)


SETTINGS: tuple[Setting, ...] = (
    Setting("db_host", "WORDPRESS_DB_HOST", default="127.0.0.1:3306"),
    Setting("db_user", "WORDPRESS_DB_USER"),
    Setting("db_password", "WORDPRESS_DB_PASSWORD", default="", secret=True),
    Setting("db_name", "WORDPRESS_DB_NAME"),
    Setting("table_prefix", "WORDPRESS_TABLE_PREFIX", _table_prefix, default="wp_"),
    Setting("partner_url", "FORMRELAY_PARTNER_URL", _http_url),
    Setting("partner_token", "FORMRELAY_PARTNER_TOKEN", default="", secret=True),
    Setting("shared_secret", "FORMRELAY_SHARED_SECRET", _secret, secret=True),
    Setting("redis_url", "FORMRELAY_REDIS_URL", _redis_url, default="", secret=True),
    Setting("uploads_dir", "FORMRELAY_UPLOADS_DIR", _directory, empty=None),
    Setting("listen", "FORMRELAY_LISTEN", _host_port, default="127.0.0.1:8787"),
    Setting("data_dir", "FORMRELAY_DATA_DIR", default="~/.local/share/formrelay"),
    Setting("queue_name", "FORMRELAY_QUEUE_NAME", _queue_name, default="formrelay"),
    Setting("workers", "FORMRELAY_WORKERS", _int_range(1, 64), default="4"),
    Setting("worker_type", "FORMRELAY_WORKER_TYPE", _worker_type, default="thread"),
    Setting("lease_seconds", "FORMRELAY_LEASE_SECONDS", _int_range(10, 86400), default="300"),
    Setting("max_attempts", "FORMRELAY_MAX_ATTEMPTS", _int_range(1, 1000), default="10"),
    Setting("shutdown_seconds", "FORMRELAY_SHUTDOWN_SECONDS", _int_range(0, 3600), default="30"),
    Setting("sweep_seconds", "FORMRELAY_SWEEP_SECONDS", _int_range(5, 3600), default="60"),
    Setting("heartbeat_seconds", "FORMRELAY_HEARTBEAT_SECONDS", _int_range(1, 300),
            default="15"),
    Setting("reconcile_days", "FORMRELAY_RECONCILE_DAYS", _int_range(0, 365), default="7"),
    Setting("keep_snapshot_days", "FORMRELAY_KEEP_SNAPSHOT_DAYS", _int_range(1, 3650),
            default="7"),
    Setting("keep_completed_days", "FORMRELAY_KEEP_COMPLETED_DAYS", _int_range(1, 3650),
            default="30"),
    Setting("keep_failed_days", "FORMRELAY_KEEP_FAILED_DAYS", _int_range(1, 3650),
            default="30"),
    Setting("delete_delivered_files", "FORMRELAY_DELETE_DELIVERED_FILES", _flag,
            default="off", empty=False),
    Setting("pause_after", "FORMRELAY_PAUSE_AFTER", _int_range(1, 1000), default="5"),
    Setting("probe_min_seconds", "FORMRELAY_PROBE_MIN_SECONDS", _float_range(0.1, 3600),
            default="30"),
    Setting("probe_max_seconds", "FORMRELAY_PROBE_MAX_SECONDS", _float_range(0.1, 86400),
            default="300"),
    Setting("partner_concurrency", "FORMRELAY_PARTNER_CONCURRENCY", _int_range(0, 256),
            default="4"),
    Setting("partner_rps", "FORMRELAY_PARTNER_RPS", _float_range(0, 10000), default="10"),
    Setting("connect_timeout", "FORMRELAY_CONNECT_TIMEOUT", _float_range(0.1, 120), default="5"),
    Setting("read_timeout", "FORMRELAY_READ_TIMEOUT", _float_range(0.1, 600), default="30"),
    Setting("partner_deadline", "FORMRELAY_PARTNER_DEADLINE_SECONDS", _float_range(1, 3600),
            default="120"),
    Setting("allow_insecure_partner", "FORMRELAY_ALLOW_INSECURE_PARTNER", _flag, default="off",
            empty=False),
    Setting("record_path", "FORMRELAY_RECORD_PATH", _url_path, default="/patients"),
    Setting("document_path", "FORMRELAY_DOCUMENT_PATH", _document_path,
            default="/patients/{id}/documents"),
    Setting("id_field", "FORMRELAY_ID_FIELD", default="id"),
    Setting("partner_auth", "FORMRELAY_PARTNER_AUTH", _auth, default="bearer"),
    Setting("backoff_base", "FORMRELAY_BACKOFF_BASE", _float_range(0, 86400), default="30"),
    Setting("backoff_factor", "FORMRELAY_BACKOFF_FACTOR", _float_range(1, 10), default="2"),
    Setting("backoff_cap", "FORMRELAY_BACKOFF_CAP", _float_range(0, 7 * 86400), default="3600"),
    Setting("min_document_bytes", "FORMRELAY_MIN_DOCUMENT_BYTES", _int_range(0, 2**40),
            default="1024"),
    Setting("max_document_bytes", "FORMRELAY_MAX_DOCUMENT_BYTES", _int_range(1, 2**40),
            default=str(25 * 1024 * 1024)),
    Setting("document_types", "FORMRELAY_DOCUMENT_TYPES", _types,
            default="application/pdf,image/jpeg,image/png,image/tiff,image/heic,image/heif"),
    Setting("templates_dir", "FORMRELAY_TEMPLATES_DIR", _directory, default=str(REPO_TEMPLATES),
            empty=None),
    Setting("form_templates", "FORMRELAY_FORM_TEMPLATES", _form_templates, default="",
            empty={}),
)
SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}
ENV_VARS: tuple[str, ...] = ("FORMRELAY_CONFIG", *(s.env for s in SETTINGS))

# What each command cannot start without (beyond settings that have defaults). The shared
# secret signs plugin requests (web) and queue messages (every command that rings a job).
DATABASE = ("db_user", "db_name")
REQUIRED: dict[str, tuple[str, ...]] = {
    "migrate": DATABASE,
    "status": DATABASE,
    "backfill": (*DATABASE, "shared_secret"),
    "resume": (*DATABASE, "shared_secret"),
    "partner-sim": (),
    "web": (*DATABASE, "shared_secret"),
    "worker": (*DATABASE, "shared_secret", "partner_url", "uploads_dir"),
    "run": (*DATABASE, "shared_secret", "partner_url", "uploads_dir"),
}


@dataclass(frozen=True)
class Config:
    db_host: str
    db_user: str
    db_password: str
    db_name: str
    table_prefix: str
    partner_url: str
    partner_token: str
    shared_secret: str
    redis_url: str
    uploads_dir: Path | None
    listen: str
    data_dir: Path
    queue_name: str
    workers: int
    worker_type: str
    lease_seconds: int
    max_attempts: int
    shutdown_seconds: int
    sweep_seconds: int
    heartbeat_seconds: int
    reconcile_days: int
    keep_snapshot_days: int
    keep_completed_days: int
    keep_failed_days: int
    delete_delivered_files: bool
    pause_after: int
    probe_min_seconds: float
    probe_max_seconds: float
    partner_concurrency: int
    partner_rps: float
    connect_timeout: float
    read_timeout: float
    partner_deadline: float
    allow_insecure_partner: bool
    record_path: str
    document_path: str
    id_field: str
    partner_auth: str
    backoff_base: float
    backoff_factor: float
    backoff_cap: float
    min_document_bytes: int
    max_document_bytes: int
    document_types: frozenset[str]
    templates_dir: Path | None
    form_templates: dict[int, str]

    def __repr__(self) -> str:  # secrets must not reach a log through repr()
        shown = (
            f"{s.name}={'***' if s.secret and getattr(self, s.name) else getattr(self, s.name)!r}"
            for s in SETTINGS
        )
        return f"Config({', '.join(shown)})"


def _read_toml(path: str) -> tuple[dict[str, Any], list[str]]:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        return {}, [f"FORMRELAY_CONFIG: cannot read {path}: {exc.strerror}"]
    except tomllib.TOMLDecodeError as exc:
        return {}, [f"FORMRELAY_CONFIG: {path} is not valid TOML: {exc}"]
    unknown = sorted(set(data) - set(SETTINGS_BY_NAME))
    problems = [f"{path}: unknown setting {key!r}" for key in unknown]
    return {k: v for k, v in data.items() if k in SETTINGS_BY_NAME}, problems


def load(
    command: str = "run",
    environ: Mapping[str, str] | None = None,
    required: Iterable[str] | None = None,
) -> Config:
    """Build the configuration a command needs, or raise ConfigError listing every problem."""
    env = os.environ if environ is None else environ
    file_values: dict[str, Any] = {}
    problems: list[str] = []
    if env.get("FORMRELAY_CONFIG"):
        file_values, problems = _read_toml(env["FORMRELAY_CONFIG"])
    needed = set(REQUIRED.get(command, DATABASE) if required is None else required)

    values: dict[str, Any] = {}
    for s in SETTINGS:
        source, raw = s.env, env.get(s.env) or None  # empty means unset, as in Docker
        if raw is None and s.name in file_values:
            source, raw = f"{s.name} (in {env['FORMRELAY_CONFIG']})", str(file_values[s.name])
        if raw is None:
            if s.name in needed and s.default is None:
                problems.append(f"{s.env} is required for `formrelay {command}` but is not set")
                continue
            raw = s.default
        if not raw:
            values[s.name] = dict(s.empty) if isinstance(s.empty, dict) else s.empty
            continue
        try:
            values[s.name] = s.parse(raw)
        except ValueError as exc:
            shown = "" if s.secret else f" (got {raw!r})"
            problems.append(f"{source} {exc}{shown}")
    if not problems and values["min_document_bytes"] > values["max_document_bytes"]:
        problems.append("FORMRELAY_MIN_DOCUMENT_BYTES must not exceed FORMRELAY_MAX_DOCUMENT_BYTES")
    if not problems and values["probe_min_seconds"] > values["probe_max_seconds"]:
        problems.append("FORMRELAY_PROBE_MIN_SECONDS must not exceed FORMRELAY_PROBE_MAX_SECONDS")
    if values.get("partner_url") and "allow_insecure_partner" in values:
        insecure = insecure_partner_problem(values["partner_url"],
                                            values["allow_insecure_partner"])
        problems += [insecure] if insecure else []
    if problems:
        raise ConfigError(problems)
    values["data_dir"] = Path(values["data_dir"]).expanduser()
    return Config(**values)
