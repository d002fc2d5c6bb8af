"""`formrelay partner-sim`: its flags and the command (serves until SIGINT/SIGTERM, exit 0).

Importing this module stays cheap (argparse and the knobs only): `formrelay`
builds every subcommand's parser on each start. The server loads on use.
"""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Callable
from typing import Any

from sidecar.config import Config
from sidecar.errors import ConfigError, UsageError
from sidecar.partner_sim.knobs import PARSERS

HELP = "a simulated partner API (latency, errors, timeouts, outages) for tests and demos"


def _typed(name: str, convert: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(raw: str) -> Any:
        try:
            value = convert(raw)
            return PARSERS[name](name, value) if name in PARSERS else value
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _threads(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= 1024:
        raise ValueError("threads must be between 1 and 1024")
    return value


def _json_file(raw: str) -> Any:
    import json

    try:
        with open(raw, encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as exc:
        raise ValueError(f"cannot read {raw}: {exc.strerror or exc}") from None
    except ValueError:
        raise ValueError(f"{raw} is not JSON") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--listen", default="127.0.0.1:9100", metavar="HOST:PORT",
        help="address to serve on; port 0 picks a free port (default 127.0.0.1:9100)")
    add("--base", type=_typed("base", str), metavar="PATH", help="API path prefix (default /api)")
    add("--profile", type=_typed("profile", str), metavar="PROFILE",
        help="the API's shape: default (JSON records, multipart documents) or fhir-r4"
             " (a FHIR R4 server: transactions, Binary, DocumentReference)")
    add("--token", type=_typed("token", str),
        help="require `Authorization: Bearer TOKEN` (default: no auth)")
    add("--forbidden", action="store_true", default=None, help="answer 403 to every API request")
    for name, unit, text in (
            ("latency_ms", "MS", "added to every API request (default 0)"),
            ("jitter_ms", "MS", "plus a random 0..MS (default 0)"),
            ("error_rate", "FRACTION", "answered 503"),
            ("timeout_rate", "FRACTION", "hang --hang-seconds, create nothing, then 504"),
            ("timeout_after_accept_rate", "FRACTION", "create, then hang before answering"),
            ("rate_limit_rate", "FRACTION", "answered 429 with Retry-After"),
            ("hang_seconds", "SECONDS", "length of a hang (default 60)"),
            ("outage_seconds", "SECONDS", "start in an outage (503s) that ends by itself")):
        add("--" + name.replace("_", "-"), type=_typed(name, float), metavar=unit, help=text)
    add("--retry-after", type=_typed("retry_after", int), metavar="SECONDS",
        help="Retry-After of 429 answers (default 1)")
    add("--retry-after-date", action="store_true", default=None,
        help="send Retry-After as an HTTP date instead of seconds")
    add("--outage", action="store_true", default=None, help="start in an outage (503s)")
    add("--seed", type=_typed("seed", int), help="seed for reproducible randomness")
    add("--jwks", type=_typed("jwks", _json_file), metavar="FILE",
        help="a JWK Set (public RSA/EC keys): serve SMART Backend Services tokens at"
             " BASE/token and require one on every API request")
    add("--client-id", type=_typed("client_id", str), metavar="ID",
        help="the client id SMART assertions must name (default formrelay)")
    add("--token-seconds", type=_typed("token_seconds", int), metavar="SECONDS",
        help="life of an issued access token (default 300)")
    add("--threads", type=_typed("threads", _threads), default=32,
        help="server threads, each holds one request (default 32)")


KNOB_ARGS = ("base", "profile", "token", "forbidden", "latency_ms", "jitter_ms", "error_rate",
             "timeout_rate", "timeout_after_accept_rate", "rate_limit_rate", "hang_seconds",
             "retry_after", "retry_after_date", "seed", "outage", "outage_seconds",
             "jwks", "client_id", "token_seconds")


def run(cfg: Config, args: argparse.Namespace) -> int:
    from sidecar.partner_sim.server import run_in_thread

    knobs = {name: getattr(args, name) for name in KNOB_ARGS if getattr(args, name) is not None}
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            running = run_in_thread(args.listen, threads=args.threads, **knobs)
        except ValueError as exc:  # flags that each parsed but do not fit together
            raise UsageError([str(exc)]) from None
        except OSError as exc:
            raise ConfigError([f"cannot listen on {args.listen}: {exc.strerror or exc}"]) from None
        print(f"partner-sim serving {running.url} (control: {running.root}/_sim/)", flush=True)
        try:
            while not stop.wait(0.5):
                pass
        finally:
            running.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
