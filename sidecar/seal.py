"""Sealed submissions: libsodium's sealed box, as PHP's sodium_crypto_box_seal writes it.

A key pair is X25519. The public half goes to WordPress (FORMRELAY_SEAL_PUBLIC_KEY in
wp-config.php): the plugin seals each snapshot with it before the INSERT, and only
the sidecar, holding the private half (FORMRELAY_SEAL_PRIVATE_KEYS), can open it. A
sealed box is anonymous: a fresh ephemeral key per message, so equal snapshots never
give equal ciphertexts. Keys travel as standard base64 of their 32 bytes.

A key id names a pair: the first 16 hex characters of the SHA-256 of the public key.
It is stored beside each ciphertext, so the sidecar knows which of its private keys
opens it (several are accepted, for rotation) and says which one it lacks.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

from sidecar.errors import ConfigError, FormRelayError

if TYPE_CHECKING:
    from sidecar.config import Config
    from sidecar.store import Document

KEY_BYTES = 32


class UnknownKey(FormRelayError):
    """The sidecar holds no private key with this id: add it to FORMRELAY_SEAL_PRIVATE_KEYS."""

    def __init__(self, key_id: str) -> None:
        self.key_id = key_id
        super().__init__(f"sealed with key {key_id}, which FORMRELAY_SEAL_PRIVATE_KEYS does not"
                         " hold: add that private key (older keys may stay, for rotation)")


class NotOpened(FormRelayError):
    """The ciphertext does not open with the key its id names (damaged, or not a box)."""


def key_id(public: bytes) -> str:
    return hashlib.sha256(public).hexdigest()[:16]


@dataclass(frozen=True)
class KeyPair:
    key_id: str
    public: str  # base64
    private: str = field(repr=False)  # base64: a secret


def generate() -> KeyPair:
    private = PrivateKey.generate()
    public = bytes(private.public_key)
    return KeyPair(key_id(public), _b64(public), _b64(bytes(private)))


def seal(public_b64: str, plaintext: bytes) -> tuple[str, bytes]:
    """(key id, sealed box): what the plugin does, for tests and `keys reseal`."""
    public = _key(public_b64, "FORMRELAY_SEAL_PUBLIC_KEY")
    return key_id(public), SealedBox(PublicKey(public)).encrypt(plaintext)


class Opener:
    """The sidecar's private keys by id (FORMRELAY_SEAL_PRIVATE_KEYS: base64 keys separated
    by commas; the newest first, which is the one `keys reseal` seals to)."""

    def __init__(self, private_keys: list[bytes]) -> None:
        self.boxes: dict[str, SealedBox[PrivateKey]] = {}
        self.publics: dict[str, str] = {}
        self.newest = ""
        for raw in private_keys:
            private = PrivateKey(raw)
            found = key_id(bytes(private.public_key))
            self.boxes[found] = SealedBox(private)
            self.publics[found] = _b64(bytes(private.public_key))
            self.newest = self.newest or found

    @classmethod
    def parse(cls, text: str, source: str = "FORMRELAY_SEAL_PRIVATE_KEYS") -> Opener:
        """ConfigError naming the position of a bad key, never the key."""
        return cls([_key(part, f"{source}, key {n}") for n, part in enumerate(split_keys(text), 1)])

    @classmethod
    def from_config(cls, cfg: Config) -> Opener:
        """The keys of FORMRELAY_SEAL_PRIVATE_KEYS (or its _FILE); none: sealing is off."""
        return cls.parse(cfg.seal_private_keys)

    def public_of(self, wanted: str) -> str | None:
        """The public half of a key held here (base64), to check wp-config's against."""
        return self.publics.get(wanted)

    @property
    def on(self) -> bool:
        """Whether the sidecar holds a key: it then seals the documents' places it writes."""
        return bool(self.newest)

    def open_snapshot(self, wanted: str | None, text: str | None) -> str | None:
        """A job's snapshot as JSON text: as stored when it is not sealed (`wanted` None).
        UnknownKey when this sidecar lacks the key; NotOpened when the box is damaged."""
        if wanted is None or not text:
            return text
        return self.open(wanted, _unb64(text, wanted)).decode("utf-8")

    def seal_text(self, text: str) -> str:
        """`text` sealed to the newest key, as the bridge stores a snapshot (base64)."""
        box = SealedBox(PublicKey(base64.b64decode(self.publics[self.newest])))
        return _b64(box.encrypt(text.encode("utf-8")))

    def seal_place(self, name: str, path: str) -> tuple[str, str, str | None]:
        """A document's (original_name, path, seal_key) as stored: with a key held, the
        name and path sealed together to the newest key (a file name is a value, and
        WPForms' stored name holds it); as given without one."""
        if not self.on:
            return name, path, None
        return "", self.seal_text(json.dumps({"name": name, "path": path})), self.newest

    def open_place(self, wanted: str | None, name: str, path: str) -> tuple[str, str]:
        """A document's (original name, path), opened when `wanted` names its key. A
        place retention blanked ('') stays blank."""
        if wanted is None or not path:
            return name, path
        try:
            place = json.loads(self.open(wanted, _unb64(path, wanted)))
            return str(place["name"]), str(place["path"])
        except (ValueError, KeyError, TypeError):
            raise NotOpened(f"a document place sealed with key {wanted} is not a place"
                            " (damaged)") from None

    def names(self, documents: Iterable[Document]) -> list[str]:
        """The documents' original names, to mask them in partner texts ('' for one
        that does not open: its name cannot be masked, nor was it sent)."""
        found = []
        for d in documents:
            try:
                found.append(self.open_place(d.seal_key, d.original_name, d.path)[0])
            except (UnknownKey, NotOpened):
                found.append("")
        return found

    def open(self, wanted: str, ciphertext: bytes) -> bytes:
        box = self.boxes.get(wanted)
        if box is None:
            raise UnknownKey(wanted)
        try:
            return bytes(box.decrypt(ciphertext))
        except CryptoError:
            raise NotOpened(f"a snapshot sealed with key {wanted} does not open with it"
                            " (damaged, or not a sealed box)") from None


def split_keys(text: str) -> list[str]:
    """FORMRELAY_SEAL_PRIVATE_KEYS' keys: separated by commas, blanks ignored."""
    return [p.strip() for p in text.split(",") if p.strip()]


def decode_key(text: str) -> bytes:
    """A key's 32 bytes from its base64; ValueError saying what is wrong, never quoting it."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("is not base64 (as `formrelay keys generate` prints it)") from None
    if len(raw) != KEY_BYTES:
        raise ValueError(f"must be {KEY_BYTES} bytes in base64, got {len(raw)}")
    return raw


def _key(text: str, source: str) -> bytes:
    try:
        return decode_key(text)
    except ValueError as exc:
        raise ConfigError([f"{source} {exc}"]) from None


NO_KEYS = Opener([])  # sealing off: clear values pass through, a sealed one is UnknownKey


def _unb64(text: str, wanted: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise NotOpened(f"a value sealed with key {wanted} is not base64 (damaged)") from None


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")
