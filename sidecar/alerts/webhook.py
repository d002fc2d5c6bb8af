"""Webhook alerts: a signed JSON POST (requests), or a Slack-compatible body.

Signature (docs/alerts.md): X-FormRelay-Signature: sha256=<hex HMAC-SHA256 of
"<X-FormRelay-Timestamp>.<raw body>" with FORMRELAY_ALERT_WEBHOOK_SECRET>. The
receiver checks it and that the timestamp is recent; X-FormRelay-Delivery names
the message (the same on every retry), so a receiver can drop a repeat. The
request is bounded by FORMRELAY_ALERT_TIMEOUT_SECONDS for the connection and
for the whole answer; nothing of the answer but its status code is kept.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field

import requests

from sidecar import __version__
from sidecar.alerts.channel import ChannelError
from sidecar.alerts.render import Rendered


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


@dataclass
class WebhookChannel:
    url: str = field(repr=False)  # a Slack URL is itself a credential
    format: str = "json"  # json | slack
    secret: str = field(default="", repr=False)
    timeout: float = 10.0
    name: str = "webhook"

    def request(self, message: Rendered, delivery_id: str,
                now: float | None = None) -> tuple[bytes, dict[str, str]]:
        shape = message.slack if self.format == "slack" else message.payload
        body = json.dumps(shape, separators=(",", ":"), ensure_ascii=False).encode()
        timestamp = str(int(now if now is not None else time.time()))
        headers = {"Content-Type": "application/json", "User-Agent": f"formrelay/{__version__}",
                   "X-FormRelay-Event": message.event, "X-FormRelay-Delivery": delivery_id,
                   "X-FormRelay-Timestamp": timestamp}
        if self.secret:
            headers["X-FormRelay-Signature"] = signature(self.secret, timestamp, body)
        return body, headers

    def send(self, message: Rendered, delivery_id: str) -> None:
        body, headers = self.request(message, delivery_id)
        deadline = time.monotonic() + self.timeout
        try:
            with requests.post(self.url, data=body, headers=headers, stream=True,
                               timeout=(self.timeout, self.timeout),
                               allow_redirects=False) as answer:
                for _ in answer.iter_content(8192):  # drained, never kept; a trickle ends
                    if time.monotonic() > deadline:
                        raise ChannelError("webhook timeout (answer too slow)")
                status = answer.status_code
        except requests.Timeout:
            raise ChannelError("webhook timeout") from None
        except requests.RequestException as exc:
            raise ChannelError(f"webhook {type(exc).__name__}") from None
        if not 200 <= status < 300:
            raise ChannelError(f"webhook HTTP {status}")
