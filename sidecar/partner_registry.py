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
from sidecar.partner_profile import Auth, Partner, StaticAuth
from sidecar.partners import DEFAULT_NAME, PartnerConfig


class UnknownPartner(ConfigError):
    def __init__(self, name: str) -> None:
        super().__init__([f"the job's partner {name!r} is not configured: add"
                          f" [partners.{name}] back, or retry the job to another partner"])


# The payload template of a form that names none, by the partner's profile: the default
# profile's JSON record; fhir-r4's Patient elements (sidecar.fhir builds the rest).
PROFILE_TEMPLATES = {"default": "default.json.j2", "fhir-r4": "fhir_patient.json.j2"}


class Partners:
    """Clients by partner name, the default first."""

    def __init__(self, clients: dict[str, Partner],
                 templates: dict[str, str] | None = None) -> None:
        if not clients:
            raise ValueError("at least one partner")
        self.clients = dict(clients)
        self.templates = templates or {}
        self.default_name = next(iter(self.clients))

    @classmethod
    def single(cls, client: Partner, name: str = DEFAULT_NAME) -> Partners:
        return cls({name: client})

    @classmethod
    def build(cls, configs: tuple[PartnerConfig, ...],
              make: Callable[[PartnerConfig], Partner]) -> Partners:
        return cls({c.name: make(c) for c in configs},
                   {c.name: PROFILE_TEMPLATES[c.profile] for c in configs})

    def client(self, name: str) -> Partner:
        """The client of the partner a job names ("" is the default)."""
        try:
            return self.clients[name or self.default_name]
        except KeyError:
            raise UnknownPartner(name) from None

    def template(self, name: str) -> str:
        """The payload template for a form naming none, by the partner's profile."""
        return self.templates.get(name or self.default_name, PROFILE_TEMPLATES["default"])

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
    """The client a partner's profile and auth call for (ConfigError: its key file)."""
    from sidecar.fhir.client import FhirClient, FhirSettings
    from sidecar.partner_client import PartnerClient, PartnerSettings

    auth = make_auth(partner)
    if partner.profile == "fhir-r4":
        return FhirClient(FhirSettings(partner.url, partner.fhir_identifier_system,
                                       partner.connect_timeout, partner.read_timeout,
                                       partner.deadline), auth, pool_size=pool_size)
    return PartnerClient(PartnerSettings.from_partner(partner), pool_size=pool_size,
                         auth=auth if partner.auth == "smart-backend" else None)


def make_auth(partner: PartnerConfig) -> Auth:
    """SMART Backend Services' token source, or the partner's fixed token headers."""
    if partner.auth == "smart-backend":
        from sidecar.smart_auth import DEFAULT_SCOPES, SmartBackendAuth, SmartSettings

        return SmartBackendAuth.from_settings(SmartSettings(
            partner.smart_client_id, partner.smart_token_url, partner.smart_private_key_file,
            partner.smart_key_id, partner.smart_scopes or DEFAULT_SCOPES,
            partner.connect_timeout, partner.read_timeout, min(partner.deadline, 60.0)))
    headers: dict[str, str] = {}
    if partner.token and partner.auth == "bearer":
        headers["Authorization"] = f"Bearer {partner.token}"
    elif partner.token and partner.auth.startswith("header:"):
        headers[partner.auth[7:].strip()] = partner.token
    return StaticAuth(headers)
