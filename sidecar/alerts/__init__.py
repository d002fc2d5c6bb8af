"""Alerts (issue 12): incidents pushed to people by e-mail and webhook, from an outbox.

`channels(cfg)` builds the channels the configuration turns on: e-mail when
FORMRELAY_SMTP_HOST and FORMRELAY_ALERT_EMAIL_TO are set, the webhook when
FORMRELAY_ALERT_WEBHOOK_URL is (config.load has refused half-configured ones).
"""

from __future__ import annotations

from sidecar.alerts.channel import Channel, ChannelError
from sidecar.alerts.email import EmailChannel
from sidecar.alerts.outbox import Sender, SendPolicy
from sidecar.alerts.render import Rendered, Renderer
from sidecar.alerts.webhook import WebhookChannel
from sidecar.config import Config


def channels(cfg: Config) -> list[Channel]:
    found: list[Channel] = []
    if cfg.smtp_host and cfg.alert_email_to:
        host, _, port = cfg.smtp_host.rpartition(":")
        found.append(EmailChannel(host.strip("[]"), int(port), cfg.smtp_security,
                                  cfg.alert_email_from[0], cfg.alert_email_to, cfg.smtp_user,
                                  cfg.smtp_password, cfg.alert_timeout))
    if cfg.alert_webhook_url:
        found.append(WebhookChannel(cfg.alert_webhook_url, cfg.alert_webhook_format,
                                    cfg.alert_webhook_secret, cfg.alert_timeout))
    return found


__all__ = [
    "Channel",
    "ChannelError",
    "EmailChannel",
    "Rendered",
    "Renderer",
    "SendPolicy",
    "Sender",
    "WebhookChannel",
    "channels",
]
