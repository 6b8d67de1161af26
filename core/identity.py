"""The identity map: which subject a system's record or an e-mail address belongs to.

E-mail addresses are found by keyed hash and kept only as ciphertext under the
subject's key. References are ``(system, ref)`` pairs such as
``("hubspot", "contact:123")``.

``resolve`` is the one rule that finds (or makes) the subject for a hint, whether over
the database (``IdentityMap``, the applier's merges) or over a batch's memory
(core.plan.Plan); it asks the suppression list first, so an erased person's address or
record is taken in by neither.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from core.crypto import Keyring, normalise_email
from core.db import identifiers, requests, subject_keys, subjects, suppression, system_refs
from core.errors import Suppressed, UnknownSubject
from core.keys import remember, subject_key, wrapped
from core.model import SubjectHint, SystemRef

REF_CHUNK = 500  # refs per IN list: well inside every backend's parameter limit


class Book(Protocol):
    """Where subjects are found and recorded: the database (``IdentityMap``) or a batch's
    memory (core.plan.Plan). ``resolve`` is the one rule over either; ``blocked`` is part
    of the contract, so no way of finding a subject skips the suppression list."""

    def blocked(self, hint: SubjectHint) -> Suppressed | None: ...

    def by_ref(self, ref: SystemRef) -> str | None: ...

    def by_email(self, email: str) -> str | None: ...

    def create(self) -> str: ...

    def add_email(self, subject_id: str, email: str) -> bool: ...

    def add_ref(self, subject_id: str, ref: SystemRef) -> None: ...


def resolve(book: Book, hint: SubjectHint, *, create: bool = True) -> tuple[str, bool]:
    """The subject for a hint (by reference, then by e-mail), creating it if allowed;
    returns (subject_id, created). Raises Suppressed when the hint names an erased person
    (nothing of theirs is taken in again), UnknownSubject when no subject is known for it
    and none may be created."""
    stop = book.blocked(hint)
    if stop is not None:
        raise stop
    subject_id = book.by_ref(hint.ref) if hint.ref is not None else None
    known_ref = subject_id is not None
    if subject_id is None and hint.email:
        subject_id = book.by_email(hint.email)
    created = False
    if subject_id is None:
        if not hint.email or not create:
            raise UnknownSubject("no subject is known for this event")
        subject_id, created = book.create(), True
    if hint.email:
        book.add_email(subject_id, hint.email)
    if hint.ref is not None and not known_ref:
        book.add_ref(subject_id, hint.ref)
    return subject_id, created


def hint_digests(keyring: Keyring, hint: SubjectHint) -> list[str]:
    """The keyed hashes the suppression list is searched by for a hint: its address's and
    its vendor record id's, at every live digest version."""
    digests = keyring.email_digests(hint.email) if hint.email else []
    if hint.ref is not None:
        digests += keyring.system_ref_digests(hint.ref.system, hint.ref.ref)
    return digests



class IdentityMap:
    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    def follow(self, conn: Connection, subject_id: str) -> str:
        """The live subject an id stands for now (merges are followed)."""
        for _ in range(16):
            merged = conn.execute(select(subjects.c.merged_into)
                                  .where(subjects.c.id == subject_id)).scalar_one_or_none()
            if merged is None:
                return subject_id
            subject_id = merged
        return subject_id

    def by_ref(self, conn: Connection, ref: SystemRef) -> str | None:
        found = conn.execute(
            select(system_refs.c.subject_id, subjects.c.merged_into)
            .join(subjects, subjects.c.id == system_refs.c.subject_id)
            .where(system_refs.c.system == ref.system, system_refs.c.ref == ref.ref)).first()
        if found is None:
            return None
        if found.merged_into is None:
            return str(found.subject_id)
        return self.follow(conn, found.merged_into)

    def by_email(self, conn: Connection, email: str) -> str | None:
        found = self._owner(conn, email)
        return self.follow(conn, found) if found is not None else None

    def by_refs(self, conn: Connection, refs: Iterable[SystemRef]) -> dict[SystemRef, str]:
        """The live subject of each known ref (merges followed): one query per system and
        ``REF_CHUNK`` refs, however many refs a merge names."""
        grouped: dict[str, list[str]] = {}
        for ref in dict.fromkeys(refs):
            grouped.setdefault(ref.system, []).append(ref.ref)
        found: dict[SystemRef, str] = {}
        for system, names in grouped.items():
            for start in range(0, len(names), REF_CHUNK):
                for row in conn.execute(
                        select(system_refs.c.ref, system_refs.c.subject_id,
                               subjects.c.merged_into)
                        .join(subjects, subjects.c.id == system_refs.c.subject_id)
                        .where(system_refs.c.system == system,
                               system_refs.c.ref.in_(names[start:start + REF_CHUNK]))):
                    found[SystemRef(system, row.ref)] = (
                        str(row.subject_id) if row.merged_into is None
                        else self.follow(conn, row.merged_into))
        return found

    def _owner(self, conn: Connection, email: str) -> str | None:
        """Whose address this is, by its digest at any live version (during a rotation a
        row may carry either)."""
        return conn.execute(select(identifiers.c.subject_id).where(
            identifiers.c.kind == "email",
            identifiers.c.digest.in_(self.keyring.email_digests(email)))
            .limit(1)).scalar_one_or_none()

    def unknown_refs(self, conn: Connection, refs: Iterable[SystemRef]) -> list[SystemRef]:
        """The refs the map cannot resolve yet (a connector may look up their e-mails)."""
        wanted = list(dict.fromkeys(refs))
        known = self.by_refs(conn, wanted)
        return [r for r in wanted if r not in known]

    def resolve(self, conn: Connection, hint: SubjectHint, now: datetime, *,
                create: bool = True) -> tuple[str, bool]:
        """The subject for a hint, creating it if needed; returns (subject_id, created):
        the rule of ``resolve`` (module level), over the database.

        Raises Suppressed when the hint names an erased person, UnknownSubject when only
        an unknown reference is given.
        """
        return resolve(_Stored(self, conn, now), hint, create=create)

    def blocked(self, conn: Connection, hint: SubjectHint) -> Suppressed | None:
        """Why ``hint`` names an erased person (their address or one of their vendor records
        is on the suppression list, or its record's subject was erased), or None."""
        digests = hint_digests(self.keyring, hint)
        if digests:
            found = conn.execute(
                select(suppression.c.request_id, requests.c.subject_id)
                .join(requests, requests.c.id == suppression.c.request_id)
                .where(suppression.c.digest.in_(digests)).limit(1)).first()
            if found is not None:
                return Suppressed("the person was erased", request_id=found.request_id,
                                  subject_id=found.subject_id)
        if hint.ref is not None:
            erased = conn.execute(
                select(system_refs.c.subject_id)
                .join(subjects, subjects.c.id == system_refs.c.subject_id)
                .where(system_refs.c.system == hint.ref.system,
                       system_refs.c.ref == hint.ref.ref, subjects.c.erased_at.is_not(None))
            ).scalar_one_or_none()
            if erased is not None:
                return Suppressed("the person was erased", subject_id=erased)
        return None

    def create(self, conn: Connection, now: datetime) -> str:
        subject_id = str(uuid.uuid4())
        key = self.keyring.new_subject_key()
        conn.execute(insert(subjects).values(id=subject_id, created_at=now))
        conn.execute(insert(subject_keys).values(**wrapped(self.keyring, subject_id, key)))
        remember(conn, subject_id, key)
        return subject_id

    def add_email(self, conn: Connection, subject_id: str, email: str) -> bool:
        """Attach an e-mail unless it is already someone's; True if it is now this subject's."""
        owner = self._owner(conn, email)
        if owner is not None:
            return self.follow(conn, owner) == subject_id
        key = self._key(conn, subject_id)
        if key is None:
            return False
        conn.execute(insert(identifiers).values(
            subject_id=subject_id, kind="email", digest=self.keyring.email_digest(email),
            key_version=self.keyring.digest_version,
            ciphertext=self.keyring.encrypt(key, normalise_email(email).encode())))
        return True

    def add_ref(self, conn: Connection, subject_id: str, ref: SystemRef, now: datetime) -> None:
        current = conn.execute(select(system_refs.c.subject_id).where(
            system_refs.c.system == ref.system, system_refs.c.ref == ref.ref)).scalar_one_or_none()
        if current is None:
            conn.execute(insert(system_refs).values(system=ref.system, ref=ref.ref,
                                                    subject_id=subject_id, created_at=now))
        elif current != subject_id:
            conn.execute(update(system_refs).where(
                system_refs.c.system == ref.system, system_refs.c.ref == ref.ref)
                .values(subject_id=subject_id))

    def remove_ref(self, conn: Connection, ref: SystemRef) -> None:
        conn.execute(delete(system_refs).where(system_refs.c.system == ref.system,
                                               system_refs.c.ref == ref.ref))

    def refs(self, conn: Connection, subject_id: str, system: str) -> tuple[str, ...]:
        rows = conn.execute(select(system_refs.c.ref).where(
            system_refs.c.subject_id == subject_id, system_refs.c.system == system)
            .order_by(system_refs.c.ref)).scalars()
        return tuple(rows)

    def email(self, conn: Connection, subject_id: str) -> str | None:
        """The subject's e-mail in clear, for the duration of a job; None once shredded."""
        key = self._key(conn, subject_id)
        token = conn.execute(select(identifiers.c.ciphertext).where(
            identifiers.c.subject_id == subject_id, identifiers.c.kind == "email")
            .order_by(identifiers.c.id.desc()).limit(1)).scalar_one_or_none()
        if key is None or token is None:
            return None
        plain = self.keyring.decrypt(key, token)
        return plain.decode() if plain is not None else None

    def emails(self, conn: Connection, subject_id: str) -> list[str]:
        """Every address of the subject in clear, oldest first; none once shredded."""
        key = self._key(conn, subject_id)
        if key is None:
            return []
        found = []
        for token in conn.execute(select(identifiers.c.ciphertext).where(
                identifiers.c.subject_id == subject_id, identifiers.c.kind == "email")
                .order_by(identifiers.c.id)).scalars():
            plain = self.keyring.decrypt(key, token)
            if plain is not None:
                found.append(plain.decode())
        return found

    def merge(self, conn: Connection, loser: str, winner: str) -> None:
        """Fold ``loser`` into ``winner``: refs and every address move (re-encrypted under
        the winner's key: an erasure must reach each of them), the id forwards.

        The winner's own address stays its primary one (the newest identifier row).
        """
        conn.execute(update(system_refs).where(system_refs.c.subject_id == loser)
                     .values(subject_id=winner))
        theirs, ours = self.emails(conn, loser), self.email(conn, winner)
        conn.execute(delete(identifiers).where(identifiers.c.subject_id == loser))
        for address in theirs:
            self.add_email(conn, winner, address)
        if ours and theirs:
            conn.execute(delete(identifiers).where(
                identifiers.c.kind == "email",
                identifiers.c.digest.in_(self.keyring.email_digests(ours))))
            self.add_email(conn, winner, ours)
        conn.execute(update(subjects).where(subjects.c.id == loser).values(merged_into=winner))

    def _key(self, conn: Connection, subject_id: str) -> bytes | None:
        return subject_key(conn, self.keyring, subject_id)


@dataclass(frozen=True)
class _Stored:
    """The identity map over one connection, as a ``Book``."""

    identity: IdentityMap
    conn: Connection
    now: datetime

    def blocked(self, hint: SubjectHint) -> Suppressed | None:
        return self.identity.blocked(self.conn, hint)

    def by_ref(self, ref: SystemRef) -> str | None:
        return self.identity.by_ref(self.conn, ref)

    def by_email(self, email: str) -> str | None:
        return self.identity.by_email(self.conn, email)

    def create(self) -> str:
        return self.identity.create(self.conn, self.now)

    def add_email(self, subject_id: str, email: str) -> bool:
        return self.identity.add_email(self.conn, subject_id, email)

    def add_ref(self, subject_id: str, ref: SystemRef) -> None:
        self.identity.add_ref(self.conn, subject_id, ref, self.now)
