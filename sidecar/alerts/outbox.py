"""The outbox's sender: lease due messages, render, send, mark; retry with backoff.

Each outbox row is leased before it is sent (SKIP LOCKED where the server has
it), so two senders never send one row at the same time; a sender killed
between sending and marking leaves its row to come back when the lease ends
(a receiver may then see it twice: X-FormRelay-Delivery / Message-ID say so).
A failing channel is retried with full-jitter backoff (sidecar.backoff) up to
`max_attempts`, then the row is `failed` with an `alert.failed` log row.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from sidecar import metrics
from sidecar.alerts.channel import Channel, ChannelError
from sidecar.alerts.render import Renderer
from sidecar.backoff import RetryPolicy
from sidecar.store import Alert, Store

log = logging.getLogger("formrelay.alerts")


@dataclass(frozen=True)
class SendPolicy:
    max_attempts: int = 8
    retry: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(base=30.0, factor=2.0, max_backoff=1800.0))
    batch: int = 20  # messages per round: a round's cost is bounded by batch x timeout
    lease_seconds: float = 120.0


class Sender:
    def __init__(self, store: Store, channels: Sequence[Channel], renderer: Renderer,
                 owner: str, policy: SendPolicy | None = None) -> None:
        self.store, self.renderer, self.owner = store, renderer, owner
        self.channels = {c.name: c for c in channels}
        self.policy = policy or SendPolicy()

    def send_due(self) -> int:
        """Send what is due now; returns how many were sent. Never raises."""
        sent = 0
        try:
            alerts = self.store.claim_alerts(self.owner, tuple(self.channels), self.policy.batch,
                                             self.policy.lease_seconds)
        except Exception as exc:  # the database hiccuped: next round
            log.warning("alerts: cannot read the outbox: %s", type(exc).__name__)
            return 0
        for alert in alerts:
            try:
                sent += self._send(alert)
            except Exception as exc:  # a bug or the database: the lease brings it back
                log.warning("alerts: alert %d not settled: %s", alert.id, type(exc).__name__)
        return sent

    def _send(self, alert: Alert) -> int:
        incident = self.store.incident(alert.incident_id)
        if incident is None:  # deleted with its incident meanwhile
            return 0
        rendered = self.renderer.render(incident, alert)
        channel = self.channels[alert.channel]
        try:
            channel.send(rendered, f"{alert.id}")
        except ChannelError as exc:
            metrics.alert_sent(alert.channel, "failed")
            self._failed(alert, str(exc))
            return 0
        metrics.alert_sent(alert.channel, "sent")
        self.store.alert_sent(alert, self.owner)
        return 1

    def _failed(self, alert: Alert, error: str) -> None:
        if alert.attempts >= self.policy.max_attempts:
            self.store.alert_failed(alert, self.owner, error)
        else:
            self.store.alert_retry(alert, self.owner,
                                   self.policy.retry.delay(alert.attempts), error)
