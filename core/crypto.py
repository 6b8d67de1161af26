"""Keyed hashes for lookups and per-subject encryption for what we must keep.

Identifiers are found by an HMAC of their normalised value, never stored in
clear. Values we must be able to read back (an e-mail to address a vendor,
consent evidence, ledger detail) are encrypted with the subject's own key;
deleting that key (crypto-shredding) leaves every copy, backups included,
unreadable.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.errors import ConfigError


def normalise_email(email: str) -> str:
    return email.strip().lower()


class Keyring:
    """Holds the installation secret; derives lookup digests and wraps subject keys."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ConfigError("PRIVASYNC_SECRET_KEY must be at least 16 bytes")
        self._secret = secret
        self._transit = Fernet(base64.urlsafe_b64encode(HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None,
            info=b"privasync transit").derive(secret)))

    def digest(self, kind: str, value: str) -> str:
        """HMAC-SHA256 of a normalised identifier: stable, unreadable without the secret."""
        return hmac.new(self._secret, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()

    def email_digest(self, email: str) -> str:
        return self.digest("email", normalise_email(email))

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
