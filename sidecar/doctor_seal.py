"""The doctor's checks of sealed submissions (README "Sealed submissions"): the rows in
the database (sealed to a key held here? still in clear?) and the key WordPress seals
with (from the plugin's signed doctor answer). Key ids and counts only: never a key's
private half, never a value."""

from __future__ import annotations

from typing import Any

from sidecar.doctor import Result, fail, ok, warn
from sidecar.seal import Opener
from sidecar.store.sealed import COUNT_CAP, SealStore

CHECK = "sealing"
README = "README, Sealed submissions"
RESEAL = "run `formrelay keys reseal` (it seals them to the newest key)"


def rows_check(store: SealStore, opener: Opener) -> Result:
    """Rows sealed to keys not held here (their jobs wait), rows still in clear."""
    by_key = store.sealed_keys()
    unknown = sorted(k for k in by_key if opener.public_of(k) is None)
    if unknown:
        count = sum(by_key[k] for k in unknown)
        return fail(CHECK, f"{count} rows are sealed to key {', '.join(unknown)}, which"
                    " FORMRELAY_SEAL_PRIVATE_KEYS does not hold: their jobs wait (no attempt"
                    " is spent)", "add that private key to FORMRELAY_SEAL_PRIVATE_KEYS (after"
                    " the newest) and restart the sidecar")
    jobs, documents = store.clear_rows()
    clear = " and ".join(f"{_count(n)} {noun}" for n, noun in ((jobs, "jobs"),
                                                               (documents, "documents")) if n)
    if not opener.on:
        return ok(CHECK, "off: submitted values are stored in clear in FormRelay's tables"
                  f" ({clear or 'none held now'}; {README})")
    older = {k: n for k, n in by_key.items() if k != opener.newest}
    sealed = f"{sum(by_key.values())} rows sealed, to key {opener.newest}" + (
        "".join(f", {n} to older key {k}" for k, n in sorted(older.items())))
    if clear:
        return warn(CHECK, f"{sealed}; {clear} hold their values in clear", RESEAL)
    return ok(CHECK, sealed + (" (`formrelay keys reseal` moves them to the newest before"
                               " an older key is removed)" if older else ""))


def plugin_check(opener: Opener, answer: dict[str, Any]) -> Result | None:
    """The key WordPress seals with, from its doctor answer; None from an older plugin."""
    if "seal_key" not in answer:
        return None
    wordpress = str(answer["seal_key"] or "")
    newest = opener.public_of(opener.newest) if opener.on else None
    set_it = (f"define( 'FORMRELAY_SEAL_PUBLIC_KEY', '{newest}' ); in wp-config.php (the"
              " newest key's public half)" if newest else "")
    if not wordpress:
        if not opener.on:
            return ok(CHECK, f"WordPress does not seal: new snapshots are stored in clear"
                      f" ({README})")
        return warn(CHECK, "WordPress does not seal (no FORMRELAY_SEAL_PUBLIC_KEY): new"
                    " snapshots are stored in clear", set_it)
    if opener.public_of(wordpress) is None:
        return fail(CHECK, f"WordPress seals to key {wordpress}, which"
                    " FORMRELAY_SEAL_PRIVATE_KEYS does not hold: every new job will wait",
                    "add that key's private half first in FORMRELAY_SEAL_PRIVATE_KEYS, or "
                    + (set_it or "generate a pair with `formrelay keys generate`"))
    if wordpress != opener.newest:
        return warn(CHECK, f"WordPress seals to key {wordpress}, an older key here (the newest"
                    f" is {opener.newest})", set_it)
    return ok(CHECK, f"WordPress seals to key {wordpress}, the newest held here")


def _count(n: int) -> str:
    return f"more than {COUNT_CAP}" if n > COUNT_CAP else str(n)
