"""Parsers of settings' raw text: each returns the value or raises ValueError saying
what the setting must be, without quoting a value (config.py adds it for non-secrets)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sidecar.payload import is_template_name
from sidecar.seal import decode_key, split_keys

Parser = Callable[[str], Any]


def text(raw: str) -> str:
    return raw


def number_range(cast: type[int] | type[float], low: float, high: float) -> Parser:
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


def int_range(low: int, high: int) -> Parser:
    return number_range(int, low, high)


def float_range(low: float, high: float) -> Parser:
    return number_range(float, low, high)


def http_url(raw: str) -> str:
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


def redis_url(raw: str) -> str:
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


def host_port(raw: str) -> str:
    host, sep, port = raw.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("must be host:port, e.g. 127.0.0.1:8787")
    return raw


def secret(raw: str) -> str:
    if len(raw) < 16:
        raise ValueError("must be at least 16 characters")
    return raw


def seal_keys(raw: str) -> str:
    """Private keys for sealed submissions: base64 of 32 bytes each, commas between them,
    the newest first. Checked here with seal.decode_key; opened by seal.Opener."""
    for n, part in enumerate(split_keys(raw), 1):
        try:
            decode_key(part)
        except ValueError:
            raise ValueError(f"key {n} must be base64 of 32 bytes, as `formrelay keys"
                             " generate` prints it") from None
    return raw


def table_prefix(raw: str) -> str:
    if not raw or not all(c.isalnum() or c == "_" for c in raw):
        raise ValueError("must be letters, digits and underscores, e.g. wp_")
    return raw


def url_path(raw: str) -> str:
    if not raw.startswith("/"):
        raise ValueError("must be a path starting with /")
    return raw


def document_path(raw: str) -> str:
    if "{id}" not in url_path(raw):
        raise ValueError("must contain {id}, where the partner's record id goes")
    return raw


def auth(raw: str) -> str:
    if raw not in ("bearer", "none", "smart-backend") and not (
            raw.startswith("header:") and raw[7:].strip()):
        raise ValueError("must be bearer, none, header:<Header-Name> or smart-backend")
    return raw


def types(raw: str) -> frozenset[str]:
    types = frozenset(t.strip().lower() for t in raw.split(",") if t.strip())
    if not types or not all("/" in t for t in types):
        raise ValueError("must be a comma-separated list of MIME types, e.g. application/pdf")
    return types


def form_templates(raw: str) -> dict[int, str]:
    """`12=intake.json.j2, 14=referral.json.j2`: a payload template per form id."""
    mapping: dict[int, str] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        form, sep, name = item.partition("=")
        if not sep or not form.strip().isdigit() or not is_template_name(name.strip()):
            raise ValueError("must be form_id=template.json.j2 pairs separated by commas")
        mapping[int(form)] = name.strip()
    return mapping


def flag(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be on or off (true/false, yes/no, 1/0)")


def worker_type(raw: str) -> str:
    if raw not in ("thread", "process"):
        raise ValueError("must be thread or process")
    return raw


def queue_name(raw: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", raw):
        raise ValueError("must be 1-64 letters, digits, dots, dashes or underscores")
    return raw


def directory(raw: str) -> Path:
    path = Path(raw).expanduser()
    if not path.is_dir():
        raise ValueError("must be an existing directory")
    return path.resolve()


def choice(*options: str) -> Parser:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return value
    return parse


def addresses(raw: str) -> tuple[str, ...]:
    """`ops@example.org, oncall@example.org`: e-mail addresses separated by commas."""
    found = tuple(a.strip() for a in raw.split(",") if a.strip())
    if not found or not all(re.fullmatch(r"[^@\s,<>]+@[^@\s,<>]+\.[^@\s,<>]+", a) for a in found):
        raise ValueError("must be e-mail addresses separated by commas, e.g. ops@example.org")
    return found


def probe(raw: str) -> tuple[str, str]:
    """`HEAD /` or `GET /metadata`: the doctor's request to the partner (method, path)."""
    method, _, path = raw.strip().partition(" ")
    if method.upper() not in ("HEAD", "OPTIONS", "GET") or not path.strip().startswith("/"):
        raise ValueError("must be HEAD, OPTIONS or GET then a path, e.g. HEAD /")
    return method.upper(), path.strip()
