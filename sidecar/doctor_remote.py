"""The doctor's checks of other services: Redis, the partner, and the FormRelay Bridge
plugin in WordPress (active, and holding the same shared secret: a signed round trip)."""

from __future__ import annotations

import hmac
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import redis
import requests

from sidecar.config import Config
from sidecar.config_parsers import redis_location
from sidecar.doctor import Result, fail, ok, warn
from sidecar.doctor_seal import plugin_check
from sidecar.errors import Category, ConfigError, PartnerError
from sidecar.partner_registry import make_client
from sidecar.partners import DEFAULT_NAME, PartnerConfig
from sidecar.seal import Opener
from sidecar.signing import sign_doctor
from sidecar.store import Database
from sidecar.store.doctor import DoctorReads

TIMEOUT_SECONDS = 5.0
PLUGIN_FILE = re.compile(r'"([^"]*/formrelay-bridge\.php)"')  # in the serialized option
DOCTOR_ROUTE = "/?rest_route=/formrelay/v1/doctor"  # works with and without pretty permalinks
CREDENTIAL_FIX = ("set FORMRELAY_PARTNER_TOKEN to a valid token (and FORMRELAY_PARTNER_AUTH to how"
             " the partner expects it)")


def remote_checks(cfg: Config, db: Database | None) -> Iterator[Result]:
    yield redis_check(cfg)
    for partner in cfg.partners:
        yield partner_check(partner)
    if db is not None:
        yield from plugin_checks(cfg, DoctorReads(db, cfg.table_prefix))


def redis_check(cfg: Config) -> Result:
    if not cfg.redis_url:
        return ok("redis", "FORMRELAY_REDIS_URL is not set: the embedded queue (one host)")
    where = redis_location(cfg.redis_url)
    has_password = bool(urlsplit(cfg.redis_url).password)
    try:
        client = redis.Redis.from_url(cfg.redis_url, socket_connect_timeout=TIMEOUT_SECONDS,
                                      socket_timeout=TIMEOUT_SECONDS)
        client.ping()
        client.close()
    except redis.exceptions.AuthenticationError as exc:
        if not has_password:
            why = "requires a password (NOAUTH) and FORMRELAY_REDIS_URL has none"
        elif "without any password configured" in str(exc) or "no password is set" in str(exc):
            why = "has no password set, but FORMRELAY_REDIS_URL sends one"
        else:
            why = "refused the user or password in FORMRELAY_REDIS_URL (WRONGPASS)"
        return fail("redis", f"{where} {why}",
                    "put Redis' password in FORMRELAY_REDIS_URL: redis://:PASSWORD@host:6379/0")
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
        return fail("redis", f"cannot reach {where}: {type(exc).__name__}",
                    "check FORMRELAY_REDIS_URL and that Redis runs and lets this host in")
    except redis.exceptions.RedisError as exc:
        return fail("redis", f"{where} answered PING with an error ({type(exc).__name__})",
                    "check FORMRELAY_REDIS_URL and Redis' ACL for this user")
    return ok("redis", f"{where} answered PING")


def partner_check(partner: PartnerConfig) -> Result:
    """The partner's probe request (its `probe`, FORMRELAY_PARTNER_PROBE): reachable, and
    the credentials taken. Named "partner" for the one default partner, else by name."""
    method, path = partner.probe
    request = f"{method} {path}"
    host = urlsplit(partner.url).netloc
    check = "partner" if partner.name == DEFAULT_NAME else f"partner {partner.name}"
    try:
        client = make_client(partner, 1)
    except ConfigError as exc:
        return fail(check, str(exc), "change the partner's profile or auth")
    try:
        status = client.probe(method, path)
    except PartnerError as exc:
        fixes = {Category.TLS: "check the partner's certificate, or REQUESTS_CA_BUNDLE for a"
                 " private CA", Category.BAD_URL: "correct FORMRELAY_PARTNER_URL",
                 Category.TIMEOUT: "check the network path to the partner (firewall, proxy)"}
        return fail(check, f"{request} on {host}: {exc}",
                    fixes.get(exc.category, "check FORMRELAY_PARTNER_URL and that this host"
                              " can reach the partner"))
    finally:
        client.close()
    judged = judge_partner(status, request, bool(partner.token))
    return replace(judged, check=check)


def judge_partner(status: int, request: str, has_token: bool) -> Result:
    said = f"{request} answered HTTP {status}"
    if status in (401, 403):
        return fail("partner", f"{said}: the partner refused FORMRELAY_PARTNER_TOKEN"
                    + ("" if has_token else " (it is not set)"), CREDENTIAL_FIX)
    if 200 <= status < 300:
        return ok("partner", said + (" with the token" if has_token else " (no token set)"))
    if 300 <= status < 400:
        return warn("partner", f"{said} (a redirect, which delivery does not follow)",
                    "check FORMRELAY_PARTNER_URL (https, the exact base path)")
    if status >= 500:
        return warn("partner", f"{said}: the partner has trouble; delivery retries",
                    "check the partner's status; nothing to change here if it is theirs")
    return warn("partner", f"{said}: reachable, but this request did not check the token",
                "set FORMRELAY_PARTNER_PROBE to a request the partner authenticates"
                " (e.g. GET /me)")


def plugin_checks(cfg: Config, reads: DoctorReads) -> Iterator[Result]:
    active = PLUGIN_FILE.search(reads.option("active_plugins") or "")
    if active is None:
        yield warn("plugin", "FormRelay Bridge is not active in WordPress: no submission is"
                   " captured (deactivating it is the off switch)",
                   "activate FormRelay Bridge under Plugins in wp-admin")
        return
    yield ok("plugin", f"FormRelay Bridge is active ({active[1]})")
    site = (reads.option("siteurl") or "").rstrip("/")
    if cfg.shared_secret and site:
        result, answer = round_trip(cfg.shared_secret, site + DOCTOR_ROUTE)
        yield result
        sealing = None if answer is None else plugin_check(Opener.from_config(cfg), answer)
        if sealing is not None:
            yield sealing


def round_trip(secret: str, url: str) -> tuple[Result, dict[str, Any] | None]:
    """Sign a request with FORMRELAY_SHARED_SECRET; the plugin proves it holds the same.
    With the result, the plugin's answer once its signature checked (else None)."""
    timestamp, nonce = str(int(time.time())), secrets.token_hex(16)
    headers = {"X-FormRelay-Timestamp": timestamp, "X-FormRelay-Nonce": nonce,
               "X-FormRelay-Signature": sign_doctor(secret, "request", timestamp, nonce, b"")}
    try:
        resp = requests.post(url, data=b"", headers=headers, timeout=TIMEOUT_SECONDS,
                             allow_redirects=False)
    except requests.RequestException as exc:
        return warn("shared secret", f"WordPress did not answer at {url}: {type(exc).__name__}",
                    "check that this host can reach the site (siteurl option); the secret"
                    " was not checked"), None
    if resp.status_code != 200:
        return _refusal(url, resp), None
    try:
        body = resp.json()
        version, signature = str(body["version"]), str(body["signature"])
    except (ValueError, KeyError, TypeError):
        return fail("shared secret", f"{url} answered 200 without the plugin's signature",
                    "check what serves that URL (a proxy or cache in front of WordPress?)"), None
    expected = sign_doctor(secret, "answer", timestamp, nonce, version.encode())
    if hmac.compare_digest(expected.encode(), signature.encode()):
        return ok("shared secret", f"the plugin ({version}) at {url} signed with the same"
                  " secret"), body
    return fail("shared secret", "the plugin's answer is not signed with"
                " FORMRELAY_SHARED_SECRET", "set the same secret on both sides"), None


def _refusal(url: str, resp: requests.Response) -> Result:
    code = _error_code(resp)
    if code == "formrelay_bad_signature":
        return fail("shared secret", "the plugin refused this signature: its shared secret"
                    " differs from FORMRELAY_SHARED_SECRET",
                    "set the same value in wp-config.php (FORMRELAY_SHARED_SECRET) or under"
                    " Settings → FormRelay, and in the sidecar")
    if code == "formrelay_no_secret":
        return fail("shared secret", "the plugin has no shared secret",
                    "set FORMRELAY_SHARED_SECRET in wp-config.php or under Settings → FormRelay")
    if code == "formrelay_stale":
        return fail("shared secret", "the plugin found this request's timestamp stale",
                    "synchronise the clocks of WordPress' host and this one (NTP)")
    if code == "rest_no_route":
        return warn("shared secret", f"{url} has no doctor route: the plugin is older than"
                    " this sidecar", "update FormRelay Bridge")
    return warn("shared secret", f"{url} answered HTTP {resp.status_code}",
                "check that this host reaches WordPress (siteurl option) without a proxy"
                " or login in between")


def _error_code(resp: requests.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return ""
    return str(body.get("code", "")) if isinstance(body, dict) else ""
