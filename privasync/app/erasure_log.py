"""The erasure log as a file: one JSON line per completed erasure, appended, never rewritten.

Where: ``PRIVASYNC_ERASURE_LOG`` (default ``var/erasure-log.jsonl``). It must live
where a database restore does not roll it back (not in the database, not in the same
backup set), on storage every process that may run the applier can reach. Lines hold
ids and keyed hashes only (core.erasures). The file is opened for appending only
(``O_APPEND``), readable by its owner alone, locked while written, and fsynced before
the erasures are forgotten in the database; the operator may make it append-only for
good (``chattr +a``) since privasync never rewrites it.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Sequence
from pathlib import Path

from core.erasure_record import ErasureRecord
from core.errors import BadInput, ConfigError
from privasync.app.settings import Settings

DEFAULT_NAME = "erasure-log.jsonl"
TORN = '{"torn_line_above": true}'  # written after a line a crash cut short


def log_path(settings: Settings) -> Path:
    return settings.erasure_log or settings.var_dir / DEFAULT_NAME


class FileErasureLog:
    """core.ports.ErasureLog on a local (or mounted) file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def ensure(self) -> None:
        """Create the empty log if there is none (so that a missing one later means a lost
        volume or a wrong path, not an installation that never erased anyone)."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600))

    def append(self, records: Sequence[ErasureRecord]) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with open(fd, "r+", closefd=False) as existing:
                text = existing.read()
            # Lenient here: a damaged line must not stop later erasures being logged
            # (``read`` is strict, so restore-check reports it).
            known = {r.request_id for r in _parse(self.path, text, strict=False)}
            lines = []
            for r in records:
                if r.request_id not in known:
                    known.add(r.request_id)
                    lines.append(json.dumps(r.to_json(), sort_keys=True))
            if not lines:
                return
            # A crash cut the last line short: end it, and say so on the next line.
            torn = "\n" + TORN + "\n" if text and not text.endswith("\n") else ""
            os.write(fd, (torn + "\n".join(lines) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)  # releases the lock

    def read(self) -> list[ErasureRecord]:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            raise ConfigError(f"no erasure log at {self.path}: set PRIVASYNC_ERASURE_LOG to "
                              "the file the applier writes (README, Backups)") from None
        except OSError as exc:
            raise ConfigError(f"the erasure log {self.path} cannot be read "
                              f"({exc.strerror or type(exc).__name__})") from None
        return _parse(self.path, text)


def _parse(path: Path, text: str, *, strict: bool = True) -> list[ErasureRecord]:
    """Every entry, first of each request id. A line cut short by a crash (the last one, or
    one followed by the torn marker) is skipped: its erasure was still queued in the
    database and was appended again. Raises ConfigError for any other unreadable line."""
    lines = text.split("\n")
    found: dict[str, ErasureRecord] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line == TORN:
            continue
        try:
            entry = ErasureRecord.from_json(json.loads(line))
        except (ValueError, BadInput) as exc:
            torn = number == len(lines) or lines[number] == TORN
            if torn or not strict:
                continue
            raise ConfigError(f"the erasure log {path} line {number} cannot be read "
                              f"({type(exc).__name__})") from None
        found.setdefault(entry.request_id, entry)
    return list(found.values())
