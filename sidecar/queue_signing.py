"""Signed queue messages: a worker unpickles only what a holder of the shared secret wrote.

Huey stores tasks as pickles, and unpickling runs code: without a signature,
anything that can write to Redis (or to the SQLite file) could run code in the
workers, which hold the partner token and read PHI. Every message is signed
with HMAC-SHA256 under a key derived from FORMRELAY_SHARED_SECRET (derived, so
the bytes that sign plugin requests never sign anything else), and the
signature is checked before a byte is unpickled. A message without a valid
signature is dropped with one log line (its size only; its bytes are an
attacker's) and the worker takes the next one: no traceback, no crash loop.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

from huey import PriorityRedisHuey, SqliteHuey
from huey.serializer import SignedSerializer

from sidecar.config_parsers import redis_location
from sidecar.queue_storage import BlockingRedisStorage, WakingSqliteStorage

log = logging.getLogger("formrelay.queue")

KEY_PURPOSE = b"FR1-queue"  # the derivation's label: this key signs queue messages only


def queue_key(shared_secret: str) -> bytes:
    """The queue's signing key: HMAC-SHA256(shared secret, purpose label)."""
    return hmac.new(shared_secret.encode(), KEY_PURPOSE, hashlib.sha256).digest()


class RefusedMessage(ValueError):
    """A queue message whose signature is missing or wrong; it was not unpickled."""


class QueueSerializer(SignedSerializer):  # type: ignore[misc]
    """Huey's signed serializer with SHA-256 (Huey's own uses SHA-1) and a distinct error."""

    def __init__(self, shared_secret: str) -> None:
        super().__init__(secret=shared_secret)  # (Huey insists on a secret; the key is ours)
        self._key = queue_key(shared_secret)

    def _signature(self, message: bytes) -> bytes:
        return hmac.new(self._key, msg=message, digestmod=hashlib.sha256).hexdigest().encode()

    def _unsign(self, signed: bytes) -> bytes:
        msg, sep, sig = bytes(signed).rpartition(self.separator)
        if not sep or not hmac.compare_digest(sig, self._signature(msg)):
            raise RefusedMessage(f"{len(signed)} bytes")  # never the bytes themselves
        return msg


def _refused(where: str, exc: RefusedMessage) -> None:
    log.error("queue: refused a %s message without a valid signature (%s); dropped, not run."
              " Something other than FormRelay writes to the queue, or a process has another"
              " FORMRELAY_SHARED_SECRET", where, exc)


class RefusingQueue:
    """Huey's reads, with refused messages logged once and skipped (mixed into a Huey)."""

    storage: Any

    def dequeue(self) -> Any:
        # Huey's Worker logs a traceback and backs off on an error here: take the next
        # message instead (a refused one is already gone from the queue).
        while (data := self.storage.dequeue()) is not None:
            try:
                return self.deserialize_task(data)  # type: ignore[attr-defined]
            except RefusedMessage as exc:
                _refused("queued", exc)
        return None

    def read_schedule(self, timestamp: Any = None) -> list[Any]:
        if timestamp is None:
            timestamp = self._get_timestamp()  # type: ignore[attr-defined]
        tasks = []
        for data in self.storage.read_schedule(timestamp):
            try:
                tasks.append(self.deserialize_task(data))  # type: ignore[attr-defined]
            except RefusedMessage as exc:
                _refused("scheduled", exc)
            except Exception:  # as Huey does: one bad message does not stop the schedule
                log.exception("queue: unable to read a scheduled task")
        return tasks


class SignedRedisQueue(RefusingQueue, PriorityRedisHuey):  # type: ignore[misc]
    storage_class = BlockingRedisStorage  # an idle worker waits in BZPOPMIN (queue_storage)

    def __init__(self, name: str, url: str, **kwargs: Any) -> None:
        super().__init__(name, url=url, **kwargs)
        self.location = redis_location(url)  # for start-up lines: no credentials


class SignedSqliteQueue(RefusingQueue, SqliteHuey):  # type: ignore[misc]
    storage_class = WakingSqliteStorage  # an idle worker waits for a ring (queue_storage)
