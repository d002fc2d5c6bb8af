"""What the engine hands a partner, whatever shape the partner speaks (its profile).

The engine builds one `RecordRequest` per record step and one `DocumentUpload`
per document step; a partner client (`Partner`) turns them into requests:

    default   sidecar.partner_client.PartnerClient: the rendered payload as JSON to
              the record path, each document as multipart `file` to the document path
    fhir-r4   a Patient and a QuestionnaireResponse, then per document a Binary and
              a DocumentReference (sidecar.fhir)

Both answer with `Accepted` (the partner's id for what it created) or raise one
of sidecar.errors' PartnerErrors; both are built per partner from its settings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

# A partner's name: in the settings' [partners.NAME], on each job, in the plugin's form
# settings and the dashboard's filter (FormRelay_Settings::PARTNER_PATTERN is the PHP copy;
# tests/unit/test_partners_config.py holds the two equal).
PARTNER_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}\Z")


class UploadBody(Protocol):
    """A file-like upload: `read` a chunk at a time, `len()` the bytes still to read."""

    def read(self, size: int | None = -1) -> bytes: ...

    def __len__(self) -> int: ...


@dataclass(frozen=True)
class Accepted:
    """A 2xx with the partner's id for what it created."""

    id: str
    status: int


@dataclass(frozen=True)
class Answer:
    """One submitted field as a question and its answer (never logged: `value` is PHI)."""

    field_id: str
    label: str
    type: str
    value: str


@dataclass(frozen=True)
class RecordRequest:
    """The record step's input.

    `payload`: the form's template rendered (the default profile's JSON body; the
    fhir-r4 profile's Patient elements). `reference`: the job's own id
    (`wpforms:<form>:<entry>`), stable across retries. `answers`: every field with a
    value, in form order (the fhir-r4 profile's QuestionnaireResponse).
    """

    payload: dict[str, Any]
    reference: str
    form_id: int
    answers: tuple[Answer, ...] = ()


@dataclass(frozen=True)
class DocumentUpload:
    """A document step's input: the checked descriptor's reader and what was checked.

    `filename` is the person's own file name (a value: it goes to the partner, never
    to a log); `label` is the field's label; `reference` is stable across retries.
    """

    body: UploadBody
    filename: str
    content_type: str
    size: int
    label: str = ""
    reference: str = ""


class Auth(Protocol):
    """A partner's credentials as request headers (a static token, or a SMART Backend
    Services access token fetched and cached on demand)."""

    def headers(self) -> dict[str, str]:
        """e.g. {"Authorization": "Bearer ..."}; may fetch a token (and raise a
        PartnerError as a request would)."""
        ...

    def invalidate(self) -> None:
        """The partner answered 401 to the current credentials: fetch anew next time."""
        ...


def token_headers(token: str, auth: str) -> dict[str, str]:
    """A fixed token as `auth` says to send it: `bearer`, `header:<Name>`; else none."""
    if token and auth == "bearer":
        return {"Authorization": f"Bearer {token}"}
    if token and auth.startswith("header:"):
        return {auth[7:].strip(): token}
    return {}


@dataclass(frozen=True)
class StaticAuth:
    """Fixed headers (FORMRELAY_PARTNER_TOKEN as bearer or a named header; or none)."""

    fixed: dict[str, str]

    def headers(self) -> dict[str, str]:
        return self.fixed

    def invalidate(self) -> None:
        """Nothing to refresh: a 401 stands."""


class Partner(Protocol):
    """A partner client: one per configured partner, shared by a process's workers."""

    def create_record(self, record: RecordRequest, idempotency_key: str) -> Accepted: ...

    def upload_document(self, record_id: str, document: DocumentUpload,
                        idempotency_key: str) -> Accepted: ...

    def probe(self, method: str, path: str) -> int: ...

    def close(self) -> None: ...
