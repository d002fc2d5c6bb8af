"""The configured partners' clients by name, as a worker process holds them.

A job records its partner's name (sidecar.partners); the engine asks here for
that partner's client. The first partner is the default: the claim writes its
name over a job's empty partner. A job naming a partner the settings no longer
hold is not failed: its step waits as a configuration problem until the
partner is configured again (UnknownPartner).
"""

from __future__ import annotations

from collections.abc import Callable

from sidecar.errors import ConfigError
from sidecar.partner_profile import Partner
from sidecar.partners import DEFAULT_NAME, PartnerConfig


class UnknownPartner(ConfigError):
    def __init__(self, name: str) -> None:
        super().__init__([f"the job's partner {name!r} is not configured: add"
                          f" [partners.{name}] back, or retry the job to another partner"])


class Partners:
    """Clients by partner name, the default first."""

    def __init__(self, clients: dict[str, Partner]) -> None:
        if not clients:
            raise ValueError("at least one partner")
        self.clients = dict(clients)
        self.default_name = next(iter(self.clients))

    @classmethod
    def single(cls, client: Partner, name: str = DEFAULT_NAME) -> Partners:
        return cls({name: client})

    @classmethod
    def build(cls, configs: tuple[PartnerConfig, ...],
              make: Callable[[PartnerConfig], Partner]) -> Partners:
        return cls({c.name: make(c) for c in configs})

    def client(self, name: str) -> Partner:
        """The client of the partner a job names ("" is the default)."""
        try:
            return self.clients[name or self.default_name]
        except KeyError:
            raise UnknownPartner(name) from None

    @property
    def default(self) -> Partner:
        return self.clients[self.default_name]

    @default.setter
    def default(self, client: Partner) -> None:
        self.clients[self.default_name] = client

    def close(self) -> None:
        for client in self.clients.values():
            client.close()


def make_client(partner: PartnerConfig, pool_size: int) -> Partner:
    """The client a partner's profile and auth call for."""
    from sidecar.partner_client import PartnerClient, PartnerSettings

    if partner.profile != "default" or partner.auth == "smart-backend":
        raise ConfigError([f"partner {partner.name!r}: profile {partner.profile} with auth"
                           f" {partner.auth} is not available in this version"])
    return PartnerClient(PartnerSettings.from_partner(partner), pool_size=pool_size)
