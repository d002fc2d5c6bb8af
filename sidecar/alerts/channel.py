"""What every alert channel is: a name and a send() that raises ChannelError on failure."""

from __future__ import annotations

from typing import Protocol

from sidecar.alerts.render import Rendered


class ChannelError(Exception):
    """A send that failed. The message is short and value-free (a status code, an SMTP
    reply code, an exception class): it becomes the outbox row's last_error."""


class Channel(Protocol):
    name: str  # email | webhook: the outbox's channel column

    def send(self, message: Rendered, delivery_id: str) -> None: ...
