"""Keyed hashes for lookups, per-subject encryption for what we must keep, and the keys
that protect both.

Identifiers are found by an HMAC of their normalised value, never stored in
clear. Values we must be able to read back (an e-mail to address a vendor,
consent evidence, ledger detail) are encrypted with the subject's own key;
deleting that key (crypto-shredding) leaves every copy made after it, backups included,
unreadable.

Envelope encryption: a subject key is stored only wrapped (AES-GCM) under a
key-encryption key (KEK) that never sits in the database, so a copy of the
database alone opens nothing. Each wrapped key names the KEK that wrapped it by
an id derived from the KEK (never the KEK itself), so KEKs can be rotated.

Digest versions: digests are chained, ``d1 = HMAC(k1, kind:value)`` and
``dv = HMAC(kv, d(v-1))``. A stored digest can be moved to the next version
without the value it hides, which is what lets the suppression list (digests of
people whose addresses are gone) survive a rotation of the digest key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.errors import ConfigError

_NONCE = 12


def normalise_email(email: str) -> str:
    return email.strip().lower()


def _hkdf(material: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(material)


def kek_id(material: bytes) -> str:
    """The public name of a KEK: 16 hex digits derived from it, never reversible to it."""
    return hmac.new(material, b"privasync kek id", hashlib.sha256).hexdigest()[:16]


class KeyUnavailable(ConfigError):
    """A key was wrapped under a KEK this process does not hold (or the wrap was altered)."""


@dataclass(frozen=True)
class DigestView:
    """Which digest keys exist and which versions stored digests may carry (floor..current)."""

    keys: Mapping[int, bytes]
    current: int
    floor: int


SYSTEM_REF = "system_ref"  # the digest kind of a vendor record id (suppression list)


class Keyring:
    """The installation secret, the KEKs and the digest keys of this process.

    ``keks`` are key-encryption keys, the current one first; ``reload_keks`` (if
    given) reads them again, for a KEK file rotated by another process.
    """

    def __init__(self, secret: bytes, keks: Sequence[bytes] = (), *,
                 reload_keks: Callable[[], Sequence[bytes]] | None = None) -> None:
        if len(secret) < 16:
            raise ConfigError("PRIVASYNC_SECRET_KEY must be at least 16 bytes")
        self._secret = secret
        self._transit = Fernet(base64.urlsafe_b64encode(_hkdf(secret, b"privasync transit")))
        self._delivery = _hkdf(secret, b"privasync delivery key")
        self._reload_keks = reload_keks
        self._lock = threading.Lock()
        self._keks: dict[str, AESGCM] = {}
        self._kek_order: list[str] = []
        self._use_keks(keks)
        self.wrap_under: str | None = None  # the KEK the database names current, once known
        self._digests = DigestView({1: secret}, 1, 1)
        self.checked_at: float | None = None  # when the database's key state was last read

    # -- KEKs ----------------------------------------------------------------------------
    def _use_keks(self, keks: Sequence[bytes]) -> None:
        for material in keks:
            if len(material) < 16:
                raise ConfigError("a key-encryption key (PRIVASYNC_KEK) must be at least "
                                  "16 bytes")
        found = {kek_id(m): AESGCM(_hkdf(m, b"privasync kek")) for m in keks}
        with self._lock:
            self._keks = found
            self._kek_order = [kek_id(m) for m in keks]

    @property
    def kek_ids(self) -> list[str]:
        """Ids of the KEKs held, the current one first."""
        return list(self._kek_order)

    @property
    def current_kek(self) -> str:
        """The id of the KEK new keys are wrapped under: the one the database names current
        (once known and held), else this process's first."""
        if self.wrap_under is not None and self.wrap_under in self._keks:
            return self.wrap_under
        if not self._kek_order:
            raise ConfigError("no key-encryption key: set PRIVASYNC_KEK (or let privasync "
                              "generate var/kek.key on a single machine)")
        return self._kek_order[0]

    def holds(self, kek: str) -> bool:
        """Whether this process holds KEK ``kek`` (reading the KEK file again if needed)."""
        if kek not in self._keks and self._reload_keks is not None:
            self._use_keks(self._reload_keks())
        return kek in self._keks

    def wrap(self, key: bytes, context: str) -> tuple[bytes, str]:
        """``key`` encrypted under the current KEK, bound to ``context`` (such as the
        subject id, so a wrapped key moved to another row opens nothing); with the KEK id."""
        kek = self.current_kek
        nonce = os.urandom(_NONCE)
        return nonce + self._keks[kek].encrypt(nonce, key, context.encode()), kek

    def unwrap(self, wrapped: bytes, kek: str, context: str) -> bytes:
        """The key inside ``wrapped``. Raises KeyUnavailable if its KEK is not held here or
        the wrap does not open (altered, or moved from another row)."""
        if not self.holds(kek):
            raise KeyUnavailable(f"a key is wrapped under KEK {kek}, which this process does "
                                 "not hold: give it PRIVASYNC_KEK (or PRIVASYNC_KEK_PREVIOUS)")
        try:
            return self._keks[kek].decrypt(wrapped[:_NONCE], wrapped[_NONCE:], context.encode())
        except InvalidTag as exc:
            raise KeyUnavailable(f"a key wrapped under KEK {kek} does not open") from exc

    # -- digests ---------------------------------------------------------------------------
    @property
    def digest_view(self) -> DigestView:
        return self._digests

    def use_digests(self, view: DigestView) -> None:
        self._digests = view

    @property
    def digest_version(self) -> int:
        return self._digests.current

    def digest(self, kind: str, value: str) -> str:
        """HMAC of a normalised identifier at the current version: stable, unreadable
        without the keys."""
        return self.digest_at(kind, value, self._digests.current)

    def digest_at(self, kind: str, value: str, version: int) -> str:
        view = self._digests
        found = hmac.new(view.keys[1], f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
        return self._forward(view, found, 1, version)

    def digests(self, kind: str, value: str) -> list[str]:
        """The value's digest at every version stored digests may carry, current first:
        look-ups try them all, so they keep working while a rotation runs."""
        view = self._digests
        found = hmac.new(view.keys[1], f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
        out = [found] if view.floor <= 1 else []
        for version in range(2, view.current + 1):
            found = hmac.new(view.keys[version], found.encode(), hashlib.sha256).hexdigest()
            if version >= view.floor:
                out.append(found)
        return out[::-1]

    def rekey(self, digest: str, version: int, to: int | None = None) -> str:
        """A digest stored at ``version`` moved to version ``to`` (default: current),
        without the value it hides."""
        view = self._digests
        return self._forward(view, digest, version, view.current if to is None else to)

    @staticmethod
    def _forward(view: DigestView, digest: str, version: int, to: int) -> str:
        if to > view.current or version > to:
            raise ConfigError(f"digest version {to} is not known to this process")
        for step in range(version + 1, to + 1):
            digest = hmac.new(view.keys[step], digest.encode(), hashlib.sha256).hexdigest()
        return digest

    def email_digest(self, email: str) -> str:
        return self.digest("email", normalise_email(email))

    def email_digests(self, email: str) -> list[str]:
        return self.digests("email", normalise_email(email))

    def system_ref_digests(self, system: str, ref: str) -> list[str]:
        """A vendor record id's digest at every live version, current first: an erased
        person's records stay recognisable on the suppression list, like their addresses."""
        return self.digests(SYSTEM_REF, f"{system}:{ref}")

    def keyed_ref(self, kind: str, value: str) -> str:
        """A reference derived from an identifier, keyed: ``k<version>.<digest>``."""
        return f"k{self.digest_version}.{self.digest(kind, value)}"

    def keyed_refs(self, kind: str, value: str) -> list[str]:
        """The value's keyed reference at every live version, current first."""
        view = self._digests
        return [f"k{view.current - i}.{d}" for i, d in enumerate(self.digests(kind, value))]

    # -- the installation secret -------------------------------------------------------
    def token_digest(self, token: str) -> str:
        """An admin token's HMAC under the installation secret (not a digest version: a new
        secret invalidates every token, by design)."""
        return hmac.new(self._secret, f"token:{token}".encode(), hashlib.sha256).hexdigest()

    def delivery_key(self, body: bytes) -> str:
        """The inbox's dedupe key for a delivery: keyed, since a body may hold an address."""
        return hmac.new(self._delivery, body, hashlib.sha256).hexdigest()

    def seal(self, data: bytes) -> bytes:
        """Encrypt data in transit through the database (an inbox body) under a key
        derived from the installation secret, which never sits in the database."""
        return self._transit.encrypt(data)

    def unseal(self, token: bytes) -> bytes | None:
        """The plaintext of ``seal``, or None if this secret did not seal it."""
        try:
            return self._transit.decrypt(token)
        except InvalidToken:
            return None

    @property
    def secret(self) -> bytes:
        """The installation secret: digest version 1 of an installation from before digest
        keys were stored (captured, wrapped, at first start)."""
        return self._secret

    # -- subject keys ----------------------------------------------------------------------
    @staticmethod
    def new_subject_key() -> bytes:
        return Fernet.generate_key()

    @staticmethod
    def encrypt(key: bytes, data: bytes) -> bytes:
        return Fernet(key).encrypt(data)

    @staticmethod
    def decrypt(key: bytes, token: bytes) -> bytes | None:
        """The plaintext, or None if the key no longer opens it."""
        try:
            return Fernet(key).decrypt(token)
        except InvalidToken:
            return None
