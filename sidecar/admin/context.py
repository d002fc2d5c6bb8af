"""What the dashboard's routes share: the store, the doorbell, settings, and the errors
that become HTTP answers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from sidecar.admin.filters import BadParameter
from sidecar.breaker import Breaker, Policy
from sidecar.doorbell import Doorbell
from sidecar.partner_profile import PARTNER_NAME
from sidecar.partners import DEFAULT_NAME, PARTNERS_ROW
from sidecar.pause import Pause, every_pause
from sidecar.retention import Retention
from sidecar.seal import NO_KEYS, Opener
from sidecar.store import Store


class NotFound(LookupError):
    """404: no such job (or nothing to show for it); the message says which."""


class Conflict(RuntimeError):
    """409: the action is not allowed in the job's status."""


STATUS_OF = ((BadParameter, 400), (NotFound, 404), (Conflict, 409))


def json_errors(blueprint: Blueprint) -> None:
    """Answer the dashboard's errors as {"error": "<plain message>"} with their status
    (the API and the views alike: the plugin shows the message in a notice)."""
    for error, status in STATUS_OF:
        def answer(exc: Exception, status: int = status) -> ResponseReturnValue:
            return jsonify(error=str(exc)), status
        blueprint.register_error_handler(error, answer)


@dataclass(frozen=True)
class Admin:
    store: Store
    doorbell: Doorbell  # rings what an action makes due
    retention: Retention = field(default_factory=Retention)  # the job view says when values go
    opener: Opener = NO_KEYS  # opens sealed values (Reveal)

    def pause_state(self) -> Breaker:
        """The pause that matters most across the partners, its cause naming a named
        partner (sidecar.health.worst_pause)."""
        from sidecar.health import worst_pause

        partner, state = worst_pause(self.store)
        return replace(state, cause=f"partner {partner}: {state.cause}") if partner else state

    def paused_partners(self) -> list[Pause]:
        """A Pause for each partner's row that exists (the default partner's included)."""
        return [Pause(self.store, Policy(), partner=key) for key, _ in every_pause(self.store)]

    def partners(self) -> tuple[list[str], str]:
        """The partners' names the sidecar published (formrelay_meta `partners`, written by
        web, worker and run at start; [] when absent or unreadable), and the default
        partner's name: the first, else "default" (the name of the one partner of the flat
        settings). One query."""
        text = self.store.meta(PARTNERS_ROW)
        try:
            found = json.loads(text) if text else []
            names = [p["name"] for p in found]
        except (ValueError, TypeError, KeyError):
            names = []
        if not all(isinstance(n, str) and PARTNER_NAME.match(n) for n in names):
            names = []
        return names, (names[0] if names else DEFAULT_NAME)


def iso(value: datetime | None) -> str | None:
    """UTC ISO 8601 with milliseconds, as the JSON API gives every time."""
    return value.isoformat(timespec="milliseconds") if value is not None else None


def iso_text(value: str) -> str | None:
    """A time the outage pause stored as text, in the API's format; None when unset."""
    if not value:
        return None
    try:
        return iso(datetime.fromisoformat(value))
    except ValueError:
        return None


def job_summary(row: dict[str, Any], default_partner: str = DEFAULT_NAME) -> dict[str, Any]:
    """`default_partner` names the partner of a job not yet claimed (partner '')."""
    return {
        "id": int(row["id"]), "reference": row["reference"], "form_id": int(row["form_id"]),
        "entry_id": int(row["entry_id"]), "status": str(row["status"]),
        "phase": str(row["phase"]), "attempts": int(row["attempts"]),
        "max_attempts": int(row["max_attempts"]), "next_attempt_at": iso(row["next_attempt_at"]),
        "documents_uploaded": int(row["documents_uploaded"]),
        "documents_total": int(row["documents_total"]), "last_error": row["last_error"],
        "error_category": row["error_category"], "partner_record_id": row["partner_record_id"],
        "partner": row["partner"] or default_partner,
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }
