"""`formrelay keys`: key pairs for sealed submissions (sidecar/seal.py).

`generate` prints the public half as the wp-config.php line and the private half for
the sidecar's secret store, and nothing else: this is the one command whose output is
a secret, so it writes nowhere on disk and a redirect is the operator's choice.

`reseal` re-encrypts, to the newest key of FORMRELAY_SEAL_PRIVATE_KEYS, every job
snapshot and document place still held in clear or sealed to an older key, in small
batches (each its own transaction, so delivery goes on around it). After it, an old
key can leave the settings; rows sealed to a key this sidecar does not hold are left
and counted.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from sidecar import config, seal
from sidecar.errors import ConfigError
from sidecar.store import Database, DbSettings, Store
from sidecar.store.sealed import Batch

HELP = ("sealed submissions: `generate` prints a new key pair (public for wp-config.php);"
        " `reseal` re-encrypts stored values to the newest private key")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("generate", "reseal"),
                        help="generate: a new X25519 key pair; reseal: re-encrypt stored values"
                             " to the first key of FORMRELAY_SEAL_PRIVATE_KEYS")
    parser.add_argument("--batch", type=int, default=100, metavar="N",
                        help="reseal: rows per transaction (default 100)")


def run(cfg: config.Config, args: argparse.Namespace) -> int:
    if args.action == "reseal":
        return reseal(config.load("keys", required=config.DATABASE), max(1, args.batch))
    pair = seal.generate()
    print(f"key id: {pair.key_id}")
    print("public key, for WordPress (wp-config.php):")
    print(f"  define( 'FORMRELAY_SEAL_PUBLIC_KEY', '{pair.public}' );")
    print("private key, for the sidecar's secret store only (FORMRELAY_SEAL_PRIVATE_KEYS,"
          " newest first, commas between keys):")
    print(f"  {pair.private}")
    return 0


def reseal(cfg: config.Config, batch: int) -> int:
    """0 when every value is sealed to the newest key; 1 when some were left."""
    opener = seal.Opener.from_config(cfg)
    if not opener.on:
        raise ConfigError(["FORMRELAY_SEAL_PRIVATE_KEYS (or its _FILE) is not set: reseal"
                           " seals to its first key"])
    store = Store(Database(DbSettings.from_config(cfg)), cfg.table_prefix)

    def snapshot(row: dict[str, Any]) -> tuple[str, ...] | None:
        try:
            opened = opener.open_snapshot(row["seal_key"], str(row["snapshot"]))
        except (seal.UnknownKey, seal.NotOpened):
            return None
        return (opener.seal_text(opened),) if opened else None

    def place(row: dict[str, Any]) -> tuple[str, ...] | None:
        try:
            name, path = opener.open_place(row["seal_key"], str(row["original_name"]),
                                           str(row["path"]))
        except (seal.UnknownKey, seal.NotOpened):
            return None
        return opener.seal_place(name, path)[:2]

    left = 0
    for noun, step in (("jobs", lambda after: store.reseal_jobs(opener.newest, after, batch,
                                                                snapshot)),
                       ("documents", lambda after: store.reseal_documents(
                           opener.newest, after, batch, place))):
        changed, skipped = _batches(step, batch)
        left += skipped
        print(f"{noun}: {changed} resealed to key {opener.newest}"
              + (f", {skipped} left (sealed to a key not held here, or damaged)" if skipped
                 else ""))
    if left:
        print("`formrelay doctor` names the key ids still in use: add those private keys to"
              " FORMRELAY_SEAL_PRIVATE_KEYS and run reseal again")
    return 1 if left else 0


def _batches(step: Callable[[int], Batch], size: int) -> tuple[int, int]:
    changed = skipped = after = 0
    while True:
        done = step(after)
        changed, skipped, after = changed + done.changed, skipped + done.left, done.last_id
        if done.read < size:
            return changed, skipped
