"""Backups and restores of a test database as an operator takes them: SQLite's online
backup into a copy of the file, PostgreSQL's ``pg_dump`` restored into a new database."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url

from tests.conftest import POSTGRES_SERVER, _admin, _created


def _plain(url: str) -> str:
    parts = urlsplit(url)
    return parts._replace(scheme="postgresql").geturl()


def backup(url: str, to: Path) -> Path:
    """A consistent backup of the database at ``url`` in file ``to``."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        source, target = sqlite3.connect(str(parsed.database)), sqlite3.connect(str(to))
        try:
            source.backup(target)
        finally:
            source.close()
            target.close()
        return to
    subprocess.run(["pg_dump", "--no-owner", "--format=custom", "--file", str(to),
                    _plain(url)], check=True, capture_output=True)
    return to


def restore(url: str, taken: Path, name: str) -> str:
    """The backup ``taken`` of the database at ``url`` restored as a new database; its URL."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        target = taken.with_name(f"{name}.db")
        target.write_bytes(taken.read_bytes())
        return f"sqlite:///{target}"
    database = f"{parsed.database}_{name}"
    _admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    _admin(f'CREATE DATABASE "{database}"')
    _created.append(database)
    restored = f"{POSTGRES_SERVER}/{database}"
    subprocess.run(["pg_restore", "--no-owner", "--dbname", _plain(restored), str(taken)],
                   check=True, capture_output=True)
    return restored
