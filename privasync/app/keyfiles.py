"""Where the installation's secrets come from, and the local files that hold them on a
single machine: ``var/secret.key`` and ``var/kek.key``, readable by the owner alone.

The KEK (key-encryption key) wraps every subject key and digest key in the
database and must never sit there: it comes from ``PRIVASYNC_KEK`` (with
``PRIVASYNC_KEK_PREVIOUS`` during a rotation), or on one machine from
``var/kek.key``, one key per line, the current one first.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from core.crypto import Keyring
from core.errors import ConfigError
from privasync.app.settings import Settings

KEK_FILE = "kek.key"
SECRET_FILE = "secret.key"  # noqa: S105 - a file name, not a secret


def private_dir(path: Path) -> Path:
    """``path`` as a directory only its owner can enter (created so; tightened if not)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)
    return path


def write_private(path: Path, text: str, *, private_parent: bool = True,
                  exclusive: bool = False) -> bool:
    """Replace ``path`` with ``text``, readable by the owner alone from its first byte
    (a temporary file made 0600, then renamed over); its directory too, unless told not
    to (a file the operator asked for, in a directory of theirs). ``exclusive``: only if
    there is no such file yet (False if another process made it first)."""
    if private_parent:
        private_dir(path.parent)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        if not exclusive:
            os.replace(temporary, path)
            return True
        try:
            os.link(temporary, path)  # fails if it exists: processes starting together agree
        except FileExistsError:
            return False
        return True
    finally:
        temporary.unlink(missing_ok=True)


def _read_or_make(path: Path) -> str:
    if not path.exists():
        write_private(path, secrets.token_urlsafe(48) + "\n", exclusive=True)
    return path.read_text()


def secret_key(settings: Settings) -> bytes:
    """PRIVASYNC_SECRET_KEY, or on a single machine a key generated once under var/."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    return _read_or_make(settings.var_dir / SECRET_FILE).strip().encode()


def kek_file(settings: Settings) -> Path | None:
    """The KEK file when the KEK comes from one (no PRIVASYNC_KEK), else None."""
    return None if settings.kek is not None else settings.var_dir / KEK_FILE


def read_keks(settings: Settings) -> list[bytes]:
    """The KEKs, current first: PRIVASYNC_KEK then PRIVASYNC_KEK_PREVIOUS (comma-separated),
    or the lines of var/kek.key (made on first use)."""
    if settings.kek is not None:
        found = [settings.kek.get_secret_value()]
        if settings.kek_previous is not None:
            found += settings.kek_previous.get_secret_value().split(",")
    else:
        path = settings.var_dir / KEK_FILE
        found = _read_or_make(path).splitlines()
    keys = [k.strip().encode() for k in found if k.strip()]
    if not keys:
        raise ConfigError("the key-encryption key is empty: set PRIVASYNC_KEK")
    return keys


def write_kek_file(path: Path, keys: list[bytes]) -> None:
    write_private(path, "".join(k.decode() + "\n" for k in keys))


def keyring(settings: Settings) -> Keyring:
    """This installation's keyring. With a KEK file, a KEK it does not know yet (rotated by
    ``privasync keys rotate --kek`` in another process) is looked for in the file again."""
    path = kek_file(settings)
    return Keyring(secret_key(settings), read_keks(settings),
                   reload_keks=(lambda: read_keks(settings)) if path is not None else None)


def new_kek() -> bytes:
    return secrets.token_urlsafe(48).encode()
