"""Settings from the environment and an optional TOML file.

Every setting has one name in TOML (`partner_url`) and one in the environment
(`FORMRELAY_PARTNER_URL`, or the official WordPress image's `WORDPRESS_DB_*`).
The environment wins over the file. Each command states which settings it
needs; `load` reports every problem at once, one line each, and never echoes a
secret's value.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sidecar import config_parsers as p
from sidecar import partners
from sidecar.config_parsers import insecure_partner_problem
from sidecar.errors import ConfigError

# sidecar/templates links to the repository's templates/ (one copy, as schema_sql): a
# checkout reads them in place, a wheel carries them as package data.
DEFAULT_TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass(frozen=True)
class Setting:
    name: str
    env: str
    parse: p.Parser = p.text
    default: str | None = None
    secret: bool = False
    empty: Any = ""  # the value when unset and not needed (no default, or an empty one)


SETTINGS: tuple[Setting, ...] = (
    Setting("db_host", "WORDPRESS_DB_HOST", default="127.0.0.1:3306"),
    Setting("db_user", "WORDPRESS_DB_USER"),
    Setting("db_password", "WORDPRESS_DB_PASSWORD", default="", secret=True),
    Setting("db_name", "WORDPRESS_DB_NAME"),
    Setting("table_prefix", "WORDPRESS_TABLE_PREFIX", p.table_prefix, default="wp_"),
    Setting("partner_url", "FORMRELAY_PARTNER_URL", p.http_url),
    Setting("partner_token", "FORMRELAY_PARTNER_TOKEN", default="", secret=True),
    Setting("shared_secret", "FORMRELAY_SHARED_SECRET", p.secret, secret=True),
    Setting("redis_url", "FORMRELAY_REDIS_URL", p.redis_url, default="", secret=True),
    Setting("uploads_dir", "FORMRELAY_UPLOADS_DIR", p.directory, empty=None),
    Setting("listen", "FORMRELAY_LISTEN", p.host_port, default="127.0.0.1:8787"),
    Setting("data_dir", "FORMRELAY_DATA_DIR", default="~/.local/share/formrelay"),
    Setting("queue_name", "FORMRELAY_QUEUE_NAME", p.queue_name, default="formrelay"),
    Setting("workers", "FORMRELAY_WORKERS", p.int_range(1, 64), default="4"),
    Setting("worker_type", "FORMRELAY_WORKER_TYPE", p.worker_type, default="process"),
    Setting("lease_seconds", "FORMRELAY_LEASE_SECONDS", p.int_range(10, 86400), default="300"),
    Setting("max_attempts", "FORMRELAY_MAX_ATTEMPTS", p.int_range(1, 1000), default="10"),
    Setting("shutdown_seconds", "FORMRELAY_SHUTDOWN_SECONDS", p.int_range(0, 3600), default="30"),
    Setting("sweep_seconds", "FORMRELAY_SWEEP_SECONDS", p.int_range(5, 3600), default="60"),
    Setting("heartbeat_seconds", "FORMRELAY_HEARTBEAT_SECONDS", p.int_range(1, 300),
            default="15"),
    Setting("reconcile_days", "FORMRELAY_RECONCILE_DAYS", p.int_range(0, 365), default="7"),
    Setting("keep_snapshot_days", "FORMRELAY_KEEP_SNAPSHOT_DAYS", p.int_range(1, 3650),
            default="7"),
    Setting("keep_completed_days", "FORMRELAY_KEEP_COMPLETED_DAYS", p.int_range(1, 3650),
            default="30"),
    Setting("keep_failed_days", "FORMRELAY_KEEP_FAILED_DAYS", p.int_range(1, 3650),
            default="30"),
    Setting("delete_delivered_files", "FORMRELAY_DELETE_DELIVERED_FILES", p.flag,
            default="off", empty=False),
    Setting("pause_after", "FORMRELAY_PAUSE_AFTER", p.int_range(1, 1000), default="5"),
    Setting("probe_min_seconds", "FORMRELAY_PROBE_MIN_SECONDS", p.float_range(0.1, 3600),
            default="30"),
    Setting("probe_max_seconds", "FORMRELAY_PROBE_MAX_SECONDS", p.float_range(0.1, 86400),
            default="300"),
    Setting("partner_concurrency", "FORMRELAY_PARTNER_CONCURRENCY", p.int_range(0, 256),
            default="4"),
    Setting("partner_rps", "FORMRELAY_PARTNER_RPS", p.float_range(0, 10000), default="10"),
    Setting("connect_timeout", "FORMRELAY_CONNECT_TIMEOUT", p.float_range(0.1, 120), default="5"),
    Setting("read_timeout", "FORMRELAY_READ_TIMEOUT", p.float_range(0.1, 600), default="30"),
    Setting("partner_deadline", "FORMRELAY_PARTNER_DEADLINE_SECONDS", p.float_range(1, 3600),
            default="120"),
    Setting("allow_insecure_partner", "FORMRELAY_ALLOW_INSECURE_PARTNER", p.flag, default="off",
            empty=False),
    Setting("record_path", "FORMRELAY_RECORD_PATH", p.url_path, default="/patients"),
    Setting("document_path", "FORMRELAY_DOCUMENT_PATH", p.document_path,
            default="/patients/{id}/documents"),
    Setting("id_field", "FORMRELAY_ID_FIELD", default="id"),
    Setting("partner_auth", "FORMRELAY_PARTNER_AUTH", p.auth, default="bearer"),
    Setting("partner_profile", "FORMRELAY_PARTNER_PROFILE", p.choice(*partners.PROFILES),
            default="default"),
    Setting("fhir_identifier_system", "FORMRELAY_FHIR_IDENTIFIER_SYSTEM",
            default=partners.DEFAULT_IDENTIFIER_SYSTEM),
    Setting("smart_client_id", "FORMRELAY_SMART_CLIENT_ID", default=""),
    Setting("smart_token_url", "FORMRELAY_SMART_TOKEN_URL", p.http_url, default=""),
    Setting("smart_private_key_file", "FORMRELAY_SMART_PRIVATE_KEY_FILE", default=""),
    Setting("smart_key_id", "FORMRELAY_SMART_KEY_ID", default=""),
    Setting("smart_scopes", "FORMRELAY_SMART_SCOPES", default=""),
    # Sealed submissions (README): the private keys that open the bridge's sealed snapshots.
    Setting("seal_private_keys", "FORMRELAY_SEAL_PRIVATE_KEYS", p.seal_keys, default="",
            secret=True),
    Setting("backoff_base", "FORMRELAY_BACKOFF_BASE", p.float_range(0, 86400), default="30"),
    Setting("backoff_factor", "FORMRELAY_BACKOFF_FACTOR", p.float_range(1, 10), default="2"),
    Setting("backoff_cap", "FORMRELAY_BACKOFF_CAP", p.float_range(0, 7 * 86400), default="3600"),
    Setting("min_document_bytes", "FORMRELAY_MIN_DOCUMENT_BYTES", p.int_range(0, 2**40),
            default="1024"),
    Setting("max_document_bytes", "FORMRELAY_MAX_DOCUMENT_BYTES", p.int_range(1, 2**40),
            default=str(25 * 1024 * 1024)),
    Setting("document_types", "FORMRELAY_DOCUMENT_TYPES", p.types,
            default="application/pdf,image/jpeg,image/png,image/tiff,image/heic,image/heif"),
    Setting("templates_dir", "FORMRELAY_TEMPLATES_DIR", p.directory, default=str(DEFAULT_TEMPLATES),
            empty=None),
    Setting("form_templates", "FORMRELAY_FORM_TEMPLATES", p.form_templates, default="",
            empty={}),
    # Operations (README "Operating FormRelay"): alerts, health, logs.
    Setting("alert_digest_minutes", "FORMRELAY_ALERT_DIGEST_MINUTES", p.int_range(1, 1440),
            default="15"),
    Setting("backlog_minutes", "FORMRELAY_BACKLOG_MINUTES", p.int_range(1, 10080), default="60"),
    Setting("dashboard_url", "FORMRELAY_DASHBOARD_URL", p.http_url, default=""),
    Setting("smtp_host", "FORMRELAY_SMTP_HOST", p.host_port, default=""),
    Setting("smtp_security", "FORMRELAY_SMTP_SECURITY", p.choice("starttls", "tls", "none"),
            default="starttls"),
    Setting("smtp_user", "FORMRELAY_SMTP_USER", default=""),
    Setting("smtp_password", "FORMRELAY_SMTP_PASSWORD", default="", secret=True),
    Setting("alert_email_from", "FORMRELAY_ALERT_EMAIL_FROM", p.addresses, default="",
            empty=()),
    Setting("alert_email_to", "FORMRELAY_ALERT_EMAIL_TO", p.addresses, default="", empty=()),
    Setting("alert_webhook_url", "FORMRELAY_ALERT_WEBHOOK_URL", p.http_url, default="",
            secret=True),  # a Slack webhook URL is itself a credential
    Setting("alert_webhook_format", "FORMRELAY_ALERT_WEBHOOK_FORMAT", p.choice("json", "slack"),
            default="json"),
    Setting("alert_webhook_secret", "FORMRELAY_ALERT_WEBHOOK_SECRET", p.secret, default="",
            secret=True),
    Setting("alert_timeout", "FORMRELAY_ALERT_TIMEOUT_SECONDS", p.float_range(0.5, 120),
            default="10"),
    Setting("worker_listen", "FORMRELAY_WORKER_LISTEN", p.host_port, default=""),
    Setting("log_level", "FORMRELAY_LOG_LEVEL", p.choice("debug", "info", "warning", "error"),
            default="info"),
    Setting("log_format", "FORMRELAY_LOG_FORMAT", p.choice("text", "json"), default="text"),
    Setting("partner_probe", "FORMRELAY_PARTNER_PROBE", p.probe, default="HEAD /"),
)
SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}
# Every secret may instead come from a file (Docker secrets, systemd credentials):
# FORMRELAY_SHARED_SECRET_FILE=/run/secrets/formrelay_shared_secret.
FILE_VARS: tuple[str, ...] = tuple(f"{s.env}_FILE" for s in SETTINGS if s.secret)
ENV_VARS: tuple[str, ...] = ("FORMRELAY_CONFIG", *(s.env for s in SETTINGS), *FILE_VARS)

# What each command cannot start without (beyond settings that have defaults). The shared
# secret signs plugin requests (web) and queue messages (every command that rings a job).
DATABASE = ("db_user", "db_name")
REQUIRED: dict[str, tuple[str, ...]] = {
    "migrate": DATABASE,
    "status": DATABASE,
    "doctor": (),  # the doctor reports what is missing instead of refusing to start
    "backfill": (*DATABASE, "shared_secret"),
    "resume": (*DATABASE, "shared_secret"),
    "partner-sim": (),
    "keys": (),  # makes a key pair: needs no setting
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
    alert_digest_minutes: int
    backlog_minutes: int
    dashboard_url: str
    smtp_host: str
    smtp_security: str
    smtp_user: str
    smtp_password: str
    alert_email_from: tuple[str, ...]
    alert_email_to: tuple[str, ...]
    alert_webhook_url: str
    alert_webhook_format: str
    alert_webhook_secret: str
    alert_timeout: float
    worker_listen: str
    log_level: str
    log_format: str
    partner_probe: tuple[str, str]
    partner_profile: str = "default"
    fhir_identifier_system: str = partners.DEFAULT_IDENTIFIER_SYSTEM
    smart_client_id: str = ""
    smart_token_url: str = ""
    smart_private_key_file: str = ""
    smart_key_id: str = ""
    smart_scopes: str = ""
    seal_private_keys: str = ""  # base64 keys, newest first (sidecar.seal.Opener.parse)
    # The partners by name (sidecar.partners): from [partners.NAME] tables, else the one
    # the flat partner_* settings describe ("default"); () when no partner is configured.
    partners: tuple[partners.PartnerConfig, ...] = ()

    def __repr__(self) -> str:  # secrets must not reach a log through repr()
        shown = (
            f"{s.name}={'***' if s.secret and getattr(self, s.name) else getattr(self, s.name)!r}"
            for s in SETTINGS
        )
        return f"Config({', '.join(shown)}, partners={self.partners!r})"


def _read_toml(path: str) -> tuple[dict[str, Any], list[str]]:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        return {}, [f"FORMRELAY_CONFIG: cannot read {path}: {exc.strerror}"]
    except tomllib.TOMLDecodeError as exc:
        return {}, [f"FORMRELAY_CONFIG: {path} is not valid TOML: {exc}"]
    known = set(SETTINGS_BY_NAME) | {f"{s.name}_file" for s in SETTINGS if s.secret} | {
        "partners"}
    problems = [f"{path}: unknown setting {key!r}" for key in sorted(set(data) - known)]
    return {k: v for k, v in data.items() if k in known}, problems


def _secret_file(s: Setting, env: Mapping[str, str],
                 file_values: Mapping[str, Any]) -> tuple[str, str] | None:
    """The secret from `<ENV>_FILE` (or `<name>_file` in the TOML file): (source, value), or
    None when neither is set. One trailing newline is dropped (`echo` writes one). Raises
    ValueError saying why the file cannot be used; never its content."""
    path = env.get(f"{s.env}_FILE") or file_values.get(f"{s.name}_file")
    if not path:
        return None
    source = f"{s.env}_FILE ({path})"
    try:
        text = Path(str(path)).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{source}: cannot read the file: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{source}: the file is not UTF-8 text") from None
    value = text.removesuffix("\n").removesuffix("\r")
    if not value:
        raise ValueError(f"{source}: the file is empty")
    return source, value


def _partners(file_values: Mapping[str, Any], values: Mapping[str, Any],
              env: Mapping[str, str]) -> tuple[tuple[partners.PartnerConfig, ...], list[str]]:
    """The partners by name, from the file's tables or the flat settings."""
    if "partners" not in file_values:
        if not values.get("partner_url"):
            return (), []
        probe_set = bool(env.get("FORMRELAY_PARTNER_PROBE")) or "partner_probe" in file_values
        return ((partners.from_flat(values, probe_set),),
                partners.check(values, "FORMRELAY_PARTNER_AUTH"))
    where = env.get("FORMRELAY_CONFIG", "the config file")
    if values.get("partner_url"):
        return (), [f"{where} names partners in [partners.NAME] tables and partner_url"
                    " (FORMRELAY_PARTNER_URL) is set too: keep one"]
    return partners.from_tables(file_values["partners"], values, where)


def alert_problems(v: Mapping[str, Any]) -> list[str]:
    """A half-configured alert channel is refused: it would fail in silence when it matters."""
    found: list[str] = []
    host, to, sender = v.get("smtp_host"), v.get("alert_email_to"), v.get("alert_email_from")
    if host and not to:
        found.append("FORMRELAY_SMTP_HOST is set but FORMRELAY_ALERT_EMAIL_TO is not: set the"
                     " recipients, or unset the host to turn e-mail alerts off")
    if (host or to) and not sender:
        found.append("e-mail alerts need FORMRELAY_ALERT_EMAIL_FROM (the sender address)")
    if sender and len(sender) > 1:
        found.append("FORMRELAY_ALERT_EMAIL_FROM must be one address")
    if to and not host:
        found.append("FORMRELAY_ALERT_EMAIL_TO is set but FORMRELAY_SMTP_HOST is not")
    if v.get("smtp_user") and not v.get("smtp_password"):
        found.append("FORMRELAY_SMTP_USER is set but FORMRELAY_SMTP_PASSWORD is not")
    if v.get("smtp_user") and v.get("smtp_security") == "none":
        found.append("FORMRELAY_SMTP_USER needs FORMRELAY_SMTP_SECURITY starttls or tls:"
                     " the password is never sent in clear")
    if v.get("alert_webhook_secret") and not v.get("alert_webhook_url"):
        found.append("FORMRELAY_ALERT_WEBHOOK_SECRET is set but FORMRELAY_ALERT_WEBHOOK_URL"
                     " is not")
    if (v.get("alert_webhook_url") and v.get("alert_webhook_format") == "json"
            and not v.get("alert_webhook_secret")):
        found.append("FORMRELAY_ALERT_WEBHOOK_URL (format json) needs"
                     " FORMRELAY_ALERT_WEBHOOK_SECRET to sign each alert")
    return found


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
    if "partners" in file_values:  # the tables name the partners: no flat URL needed
        needed.discard("partner_url")

    values: dict[str, Any] = {}
    for s in SETTINGS:
        source, raw = s.env, env.get(s.env) or None  # empty means unset, as in Docker
        if s.secret:
            try:
                from_file = _secret_file(s, env, file_values)
            except ValueError as exc:
                problems.append(str(exc))
                continue
            if from_file is not None and raw is not None:
                problems.append(f"{s.env} and {s.env}_FILE are both set: set only one")
                continue
            source, raw = from_file or (source, raw)
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
    problems += alert_problems(values)
    named, wrong = _partners(file_values, values, env)
    problems += wrong
    if problems:
        raise ConfigError(problems)
    values["partners"] = named
    values["data_dir"] = Path(values["data_dir"]).expanduser()
    return Config(**values)
