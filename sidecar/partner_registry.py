"""The configured partners' clients by name, as a worker process holds them.

A job records its partner's name (sidecar.partners); the engine asks here for
that partner's client. The first partner is the default: the claim writes its
name over a job's empty partner. A job naming a partner the settings no longer
hold is not failed: its step waits as a configuration problem until the
partner is configured again (UnknownPartner).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sidecar.errors import ConfigError
from sidecar.partner_profile import Auth, Partner, StaticAuth, token_headers
from sidecar.partners import DEFAULT_NAME, PARTNERS_ROW, PartnerConfig, keys
from sidecar.pause import Pause
from sidecar.store import Store
from sidecar.throttle import Throttle

if TYPE_CHECKING:
    from sidecar.config import Config


class UnknownPartner(ConfigError):
    def __init__(self, name: str) -> None:
        super().__init__([f"the job's partner {name!r} is not configured: add"
                          f" [partners.{name}] back, or retry the job to another partner"])


# The payload template of a form that names none, by the partner's profile: the default
# profile's JSON record; fhir-r4's Patient elements (sidecar.fhir builds the rest).
PROFILE_TEMPLATES = {"default": "default.json.j2", "fhir-r4": "fhir_patient.json.j2"}


@dataclass
class Lane:
    """One partner as a worker delivers to it: its client, its own outage pause and its
    own ceilings (None in tests: never paused, not paced), its profile's template."""

    client: Partner
    pause: Pause | None = None
    throttle: Throttle | None = None
    template: str = PROFILE_TEMPLATES["default"]


class Partners:
    """The partners' lanes by name, the default first."""

    def __init__(self, lanes: dict[str, Lane]) -> None:
        if not lanes:
            raise ValueError("at least one partner")
        self.lanes = dict(lanes)
        self.default_name = next(iter(self.lanes))

    @classmethod
    def single(cls, client: Partner, pause: Pause | None = None,
               throttle: Throttle | None = None, name: str = DEFAULT_NAME) -> Partners:
        return cls({name: Lane(client, pause, throttle)})

    @classmethod
    def build(cls, configs: tuple[PartnerConfig, ...],
              make: Callable[[PartnerConfig], Partner],
              protect: Callable[[PartnerConfig, str], tuple[Pause, Throttle]] | None = None
              ) -> Partners:
        """A lane per partner; `protect(config, key)` its pause and throttle, where `key` is
        "" for the default (first) partner, else its name (sidecar.pause.row_of)."""
        lanes = {}
        for c, key in keys(configs):
            pause, throttle = protect(c, key) if protect else (None, None)
            lanes[c.name] = Lane(make(c), pause, throttle, PROFILE_TEMPLATES[c.profile])
        return cls(lanes)

    def lane(self, name: str) -> Lane:
        """The lane of the partner a job names ("" is the default)."""
        try:
            return self.lanes[name or self.default_name]
        except KeyError:
            raise UnknownPartner(name) from None

    def client(self, name: str) -> Partner:
        return self.lane(name).client

    def key(self, name: str) -> str:
        """"" for the default partner (its pause row and slots keep their old names)."""
        return "" if name in ("", self.default_name) else name

    def template(self, name: str) -> str:
        """The payload template for a form naming none, by the partner's profile."""
        return self.lanes.get(name or self.default_name, self.default_lane).template

    @property
    def default_lane(self) -> Lane:
        return self.lanes[self.default_name]

    def close(self) -> None:
        for lane in self.lanes.values():
            lane.client.close()


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
        from sidecar.smart_auth import SmartBackendAuth, SmartSettings

        return SmartBackendAuth.from_settings(SmartSettings.from_partner(partner))
    return StaticAuth(token_headers(partner.token, partner.auth))


def publish_partners(store: Store, cfg: Config) -> None:
    """The partners' names and profiles in formrelay_meta (`partners`, JSON): the plugin's
    per-form setting offers them. Written by each process that has them at its start."""
    if cfg.partners:
        store.set_meta(PARTNERS_ROW, json.dumps([{"name": p.name, "profile": p.profile}
                                                 for p in cfg.partners]))
