"""Nonces of signed requests already accepted: the replay guard every web process shares.

A nonce is remembered as the SHA-256 of "<purpose>\\n<nonce>" (a fixed-size
primary key) until `expires_at`, which the database computes; a second INSERT
of the same key fails with 1062 (duplicate key), and that is the replay. The
database is the one memory every host shares and a restart keeps, unlike a
process's dict or a Redis a FLUSHALL empties.

Expired rows go on the insert path: one insert in PURGE_EVERY also deletes at
most PURGE_LIMIT expired rows (index `expires_at`, READ COMMITTED: no gap locks
on the rows new inserts add), so the table stays about one window of traffic.
"""

from __future__ import annotations

import hashlib
import random

from mysql.connector import errorcode
from mysql.connector.errors import IntegrityError

from sidecar.signing import NONCE_TTL_SECONDS
from sidecar.store.base import StoreBase

PURGE_EVERY = 64
PURGE_LIMIT = 1000


class NonceStore(StoreBase):
    @property
    def _nonces(self) -> str:
        return f"{self.prefix}formrelay_nonces"

    def first_use(self, purpose: str, nonce: str, ttl: int = NONCE_TTL_SECONDS) -> bool:
        """Record (purpose, nonce); False when it was recorded already (a replay)."""
        key = hashlib.sha256(f"{purpose}\n{nonce}".encode()).digest()
        try:
            with self.db.transaction() as cur:
                cur.execute(f"INSERT INTO {self._nonces} (nonce_key, expires_at)"
                            " VALUES (%s, UTC_TIMESTAMP() + INTERVAL %s SECOND)", (key, ttl))
        except IntegrityError as exc:
            if exc.errno != errorcode.ER_DUP_ENTRY:
                raise
            return False
        if random.randrange(PURGE_EVERY) == 0:  # spreading work, not security
            self.purge_nonces()
        return True

    def purge_nonces(self, limit: int = PURGE_LIMIT) -> int:
        """Delete up to `limit` expired nonces; how many went."""
        with self.db.transaction() as cur:
            cur.execute(f"DELETE FROM {self._nonces} WHERE expires_at < UTC_TIMESTAMP()"
                        " LIMIT %s", (limit,))
            return int(cur.rowcount)
