"""Envelope encryption and key rotation, on both backends: a copy of the database alone
opens nothing; the KEK and the digest key rotate without losing anyone, the erased
included (the suppression list survives)."""

from __future__ import annotations

import hashlib
import re
import shutil
import sqlite3
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from alembic import command
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine

from core import directory, keys, ledger, rotation
from core.crypto import Keyring, KeyUnavailable
from core.db import (
    field_state,
    identifiers,
    key_state,
    ledger_pending,
    make_engine,
    subject_keys,
    suppression,
    system_refs,
)
from core.errors import ConfigError
from core.identity import IdentityMap
from core.model import (
    Channel,
    ConsentChange,
    ConsentChanged,
    ConsentStatus,
    EventMeta,
    Evidence,
    FieldValue,
    RecordChanged,
    SubjectHint,
)
from core.schema import alembic_config, upgrade
from tests.conftest import make_database
from tests.core.conftest import KEK, SECRET, Core, make_core
from tests.core.test_requests_flow import EMAIL, Flow
from tests.core.test_requests_flow import (
    test_an_erasure_is_carried_out_acknowledged_told_and_shredded as erase_someone,
)
from tests.timing import scaled

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
ADA, BOB = "Ada.Lovelace@example.org", "bob.builder@example.net"


def consent(core: Core, name: str, email: str, status: ConsentStatus,
            when: datetime = NOW) -> None:
    core.accept([ConsentChanged(EventMeta("hubspot", name, when), SubjectHint(email=email),
                                (ConsentChange("offers", Channel.EMAIL, status),),
                                Evidence("hubspot", "form", proof_reference=f"form:{name}"))],
                when)


def record(core: Core, name: str, email: str, first_name: str) -> str:
    applied = core.accept([RecordChanged(EventMeta("hubspot", name, NOW),
                                         SubjectHint(email=email),
                                         (("first_name", FieldValue(first_name, NOW)),))], NOW)
    return next(iter(applied.outcomes))


def stolen_copy(engine: Engine, tmp_path: Path) -> bytes:
    """What a thief takes: the database file (with its WAL), or a pg_dump."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        copy = tmp_path / "stolen.db"
        for suffix in ("", "-wal"):
            source = Path(f"{url.database}{suffix}")
            if source.exists():
                shutil.copy(source, f"{copy}{suffix}")
        with sqlite3.connect(copy) as conn:  # the thief can read every table, of course
            blobs = [v for (table,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")
                for row in conn.execute(f'SELECT * FROM "{table}"')  # noqa: S608
                for v in row if isinstance(v, bytes)]
        return b"\n".join([copy.read_bytes(), *blobs])
    parts = urlsplit(url.render_as_string(hide_password=False).replace("+psycopg", ""))
    dump = subprocess.run(["pg_dump", "--no-owner", parts._replace(scheme="postgresql").geturl()],
                          check=True, timeout=scaled(60), capture_output=True).stdout
    decoded = [bytes.fromhex(h.decode()) for h in re.findall(rb"\\\\x([0-9a-f]+)", dump)]
    return b"\n".join([dump, *decoded])


def opens(blob: bytes) -> list[bytes]:
    """Every Fernet token in ``blob`` opened by any Fernet key found in it (how the
    unwrapped keys stored next to their ciphertext used to give everything away)."""
    tokens = set(re.findall(rb"gAAAAA[A-Za-z0-9_\-]+=*", blob))
    candidates = set(re.findall(rb"(?<![A-Za-z0-9_\-])[A-Za-z0-9_\-]{43}=", blob))
    opened = []
    for token in tokens:
        for key in candidates:
            try:
                plain = Keyring.decrypt(key, token)
            except ValueError:
                continue
            if plain is not None:
                opened.append(plain)
    return opened


def test_a_copy_of_the_database_alone_decrypts_nothing(engine: Engine, tmp_path: Path):
    core = make_core(engine)
    consent(core, "c1", ADA, ConsentStatus.WITHDRAWN)
    record(core, "r1", ADA, "Augusta")
    with engine.connect() as conn:
        [row] = conn.execute(select(subject_keys)).all()
        [token] = conn.execute(select(identifiers.c.ciphertext)).scalars()
    # The stored key is no Fernet key: it is wrapped, and names its KEK by a fingerprint.
    assert row.kek_id == core.keyring.kek_ids[0]
    assert KEK.decode() not in row.kek_id and len(row.key) > 44

    blob = stolen_copy(engine, tmp_path)
    assert b"gAAAAA" in blob  # the ciphertexts are in the copy...
    assert opens(blob) == []  # ...and nothing in the copy opens any of them
    assert ADA.lower().encode() not in blob.lower() and b"Augusta" not in blob
    thief = Keyring(SECRET, [b"a-guess-at-the-key-encryption-key"])  # even with the secret
    with pytest.raises(KeyUnavailable):
        thief.unwrap(row.key, row.kek_id, row.subject_id)
    # With the KEK it all opens: the copy above really held the person's address.
    key = core.keyring.unwrap(row.key, row.kek_id, row.subject_id)
    assert Keyring.decrypt(key, token) == ADA.lower().encode()
    with pytest.raises(KeyUnavailable):  # a wrapped key moved to another row opens nothing
        core.keyring.unwrap(row.key, row.kek_id, "someone-else")


def test_crypto_shredding_still_destroys_the_wrapped_key(engine: Engine):
    flow = Flow(engine)
    erase_someone(flow)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(subject_keys)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(suppression)).scalar_one() == 1


def test_the_migration_wraps_keys_stored_before_it_and_keys_mailchimp_refs(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path}/old.db")
    config = alembic_config(engine)
    with engine.begin() as conn:  # a database as the release before this one left it
        config.attributes["connection"] = conn
        command.upgrade(config, "5aaad965f272")
    raw = Keyring.new_subject_key()
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO subjects (id, created_at, is_customer) "
                          "VALUES ('s1', '2026-01-01 00:00:00', 0)"))
        conn.execute(text("INSERT INTO subject_keys (subject_id, key) VALUES ('s1', :k)"),
                     {"k": raw})
        conn.execute(text("INSERT INTO identifiers (subject_id, kind, digest, ciphertext) "
                          "VALUES ('s1', 'email', :d, :c)"),
                     {"d": Keyring(SECRET).email_digest(ADA),
                      "c": Keyring.encrypt(raw, ADA.lower().encode())})
        for ref in ("member:" + hashlib.md5(ADA.lower().encode()).hexdigest(),
                    "member:" + "0" * 32):  # ...and one whose address privasync never held
            conn.execute(text("INSERT INTO system_refs (system, ref, subject_id, created_at) "
                              "VALUES ('mailchimp', :r, 's1', '2026-01-01 00:00:00')"),
                         {"r": ref})
    with pytest.raises(ConfigError, match="unwrapped subject keys"):
        upgrade(engine)  # never without the KEK at hand
    keyring = Keyring(SECRET, [KEK])
    upgrade(engine, keyring)
    with engine.connect() as conn:
        row = conn.execute(select(subject_keys)).one()
        refs = list(conn.execute(select(system_refs.c.ref)).scalars())
        assert row.key != raw and keyring.unwrap(row.key, row.kek_id, "s1") == raw
        assert IdentityMap(keyring).by_email(conn, ADA) == "s1"  # digests still match
    assert refs == [f"member:{keyring.keyed_ref('email', ADA.lower())}"]
    engine.dispose()


def test_the_kek_rotates_and_the_old_one_is_then_not_needed(engine: Engine):
    core = make_core(engine)
    consent(core, "c1", ADA, ConsentStatus.WITHDRAWN)
    new = b"the-next-key-encryption-key-0123456789"
    both = Keyring(SECRET, [new, KEK])
    done = rotation.rotate_kek(engine, both, lambda: NOW)
    assert done == {"subject_keys": 1, "digest_keys": 1}
    assert rotation.rotate_kek(engine, both, lambda: NOW) == {"subject_keys": 0,
                                                                "digest_keys": 0}
    only_new = Keyring(SECRET, [new])
    keys.ensure(engine, only_new)
    with engine.connect() as conn:
        sid = IdentityMap(only_new).by_email(conn, ADA)
        assert sid is not None and IdentityMap(only_new).email(conn, sid) == ADA.lower()
        assert rotation.kek_in_use(conn) == {only_new.kek_ids[0]: 2}
    with pytest.raises(ConfigError, match="does not hold"):
        keys.ensure(engine, Keyring(SECRET, [KEK]))  # the old KEK alone opens nothing now
    with engine.connect() as conn:  # waiting for the applier to chain them
        kinds = list(conn.execute(select(ledger_pending.c.kind)).scalars())
    assert kinds == ["keys.kek_rotation_started", "keys.kek_rotated"]


def test_a_digest_rotation_keeps_everyone_the_erased_included(
        engine: Engine, monkeypatch: pytest.MonkeyPatch):
    flow = Flow(engine)
    erase_someone(flow)  # EMAIL is erased: only its digest is left, on the suppression list
    core = flow.core
    consent(core, "c2", BOB, ConsentStatus.WITHDRAWN, NOW)
    assert record(core, "r2", BOB, "Bob") == "applied"
    directory.refresh(engine, core.keyring, "mailchimp", [BOB], NOW)
    with engine.connect() as conn:
        bob = IdentityMap(core.keyring).by_email(conn, BOB)
        before = set(conn.execute(select(suppression.c.digest)).scalars())

    # Interrupted when the addresses have moved and the suppression list has not: look-ups
    # try both versions, so the erased person is still blocked and Bob still known.
    real = rotation._rekey

    def interrupted(engine: Engine, keyring: Keyring, table: object, target: int) -> int:
        if table is suppression:
            raise RuntimeError("interrupted")
        return real(engine, keyring, table, target)  # type: ignore[arg-type]

    monkeypatch.setattr(rotation, "_rekey", interrupted)
    with pytest.raises(RuntimeError):
        rotation.rotate_digest(engine, core.keyring, lambda: NOW, settle=0)
    with engine.connect() as conn:
        state = keys.read_state(conn)
        assert state is not None and (state.digest_version, state.digest_floor) == (2, 1)
        assert set(conn.execute(select(identifiers.c.key_version)).scalars()) == {2}
        assert set(conn.execute(select(suppression.c.key_version)).scalars()) == {1}
        assert IdentityMap(core.keyring).by_email(conn, BOB) == bob
    came_back(flow, "during")
    monkeypatch.setattr(rotation, "_rekey", real)

    moved = rotation.rotate_digest(engine, core.keyring, lambda: NOW, settle=0)  # resumes
    with engine.connect() as conn:
        state = keys.read_state(conn)
        assert state is not None and (state.digest_version, state.digest_floor) == (2, 2)
        assert rotation.remaining(conn, 2) == 0
        after = set(conn.execute(select(suppression.c.digest)).scalars())
        assert IdentityMap(core.keyring).by_email(conn, BOB) == bob
        assert directory.listed(conn, core.keyring, "mailchimp", [bob]) == {bob}
        assert set(conn.execute(select(field_state.c.key_version)).scalars()) == {2}
    assert moved["suppression"] == 1 and moved["identifiers"] == 0  # resumed, not redone
    assert after and not after & before
    came_back(flow, "after")
    assert record(core, "r3", BOB, "Bob") == "unchanged"  # field hashes moved too


def came_back(flow: Flow, when: str) -> None:
    """The erased person subscribes again: nothing is stored, the ledger says blocked."""
    engine = flow.core.engine
    with engine.connect() as conn:
        keys_before = conn.execute(select(func.count()).select_from(subject_keys)).scalar_one()
        blocked = blocked_count(conn)
    flow.event(ConsentChanged(EventMeta("mailchimp", f"back-{when}", NOW + timedelta(days=2)),
                              SubjectHint(email=EMAIL.upper()),
                              (ConsentChange("offers", Channel.EMAIL, ConsentStatus.GRANTED),)))
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(subject_keys)).scalar_one() \
            == keys_before, f"the erased person was stored again ({when} the rotation)"
        assert blocked_count(conn) == blocked + 1


def blocked_count(conn) -> int:  # type: ignore[no-untyped-def]
    return int(conn.execute(select(func.count()).select_from(ledger.ledger).where(
        ledger.ledger.c.kind == "suppression.blocked")).scalar_one())


def test_a_writer_that_missed_a_rotation_decides_again(engine: Engine):
    """It learns the new version at its next write and decides again: it never writes a
    digest of the retired version, nor takes a known person for a new one."""
    core = make_core(engine)
    consent(core, "c1", ADA, ConsentStatus.WITHDRAWN)
    other = make_core(engine, holder="applier:test")  # same lease holder, its own keyring
    rotation.rotate_digest(engine, core.keyring, lambda: NOW, settle=0)
    assert other.keyring.digest_version == 1  # it has not read the key state since
    consent(other, "c2", ADA, ConsentStatus.GRANTED, NOW + timedelta(minutes=1))
    assert other.keyring.digest_version == 2
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(identifiers)).scalar_one() == 1
        assert set(conn.execute(select(identifiers.c.key_version)).scalars()) == {2}
        assert conn.execute(select(key_state.c.digest_floor)).scalar_one() == 2


def test_sqlite_files_are_readable_by_their_owner_alone(tmp_path: Path):
    url = make_database("sqlite", tmp_path / "var" / "db")
    engine = make_engine(url)
    make_core(engine)
    with engine.begin() as conn:
        conn.execute(text("SELECT 1"))
        database = Path(url.removeprefix("sqlite:///"))
        files = [database, *[Path(f"{database}{s}") for s in ("-wal", "-shm")]]
        assert all(f.exists() for f in files)
        modes = {f.name: oct(f.stat().st_mode & 0o777) for f in files}
    assert set(modes.values()) == {"0o600"}, modes
    assert oct(database.parent.stat().st_mode & 0o777) == "0o700"
    engine.dispose()


def test_a_new_installation_secret_keeps_every_digest(engine: Engine):
    """Digest key 1 is the secret captured at first start: replacing PRIVASYNC_SECRET_KEY
    (admin tokens, sealed bodies) leaves every look-up and the suppression list alone."""
    core = make_core(engine)
    consent(core, "c1", ADA, ConsentStatus.WITHDRAWN)
    replaced = Keyring(b"a-new-installation-secret-000000", [KEK])
    keys.ensure(engine, replaced)
    with engine.connect() as conn:
        assert IdentityMap(replaced).by_email(conn, ADA) is not None
