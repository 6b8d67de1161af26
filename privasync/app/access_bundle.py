"""The access and portability bundle (Art. 15, 20): what every system holds about a person.

Made on demand from what the export jobs gathered (kept encrypted under the
person's key, deleted after ``PRIVASYNC_EXPORT_KEEP_DAYS``) and privasync's own
records: consent with its evidence and history, the contact moments it knows
of, what it sent to each partner. One JSON document whose schema is published
(``ACCESS_SCHEMA``, served at ``/api/v1/schemas/access-bundle.json``) and a
human-readable summary in Markdown.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.engine import Connection

from core import state
from core import subject_requests as rq
from core.crypto import Keyring
from core.db import disclosures, events, identifiers, jobs, ledger, reader, request_exports
from core.errors import NotFound
from core.mappings import Mappings
from privasync.app.subject_requests import get
from privasync.app.views import Desk

SCHEMA_ID = "https://privasync.dev/schemas/access-bundle/v1.json"
SCHEMA_PATH = "/schemas/access-bundle.json"  # under the admin API's /api/v1, public


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HeldField(_Model):
    record: str = Field(description="The record in the system, e.g. contact:1001")
    record_type: str | None = Field(
        default=None, description="What the record is, in words: contact, logged e-mail, "
        "call, task, case...; a merged record says what it was merged into")
    field: str = Field(description="The system's own name of the field")
    value: str | None
    canonical: str | None = Field(description="privasync's name for it, if mapped")
    category: str | None = Field(description="Data category (fideslang taxonomy key)")
    purposes: list[str]
    legal_basis: list[str] = Field(description="Art. 6 basis of each purpose")
    source: str = Field(description="Where the value was read")


class SystemData(_Model):
    system: str
    gathered_at: datetime | None
    note: str
    fields: list[HeldField]


class ConsentNow(_Model):
    purpose: str
    channel: str
    status: str
    decided_at: datetime
    source: str
    evidence: dict[str, str | None] | None


class ConsentEvent(_Model):
    at: datetime
    what: str
    detail: dict[str, Any]


class Disclosure(_Model):
    at: datetime
    kind: str
    fields: list[str]


class PartnerData(_Model):
    partner: str
    agreement: str
    purposes: list[str]
    identifiers: list[str]
    sent: list[Disclosure]


class Moment(_Model):
    at: datetime
    source: str
    what: str
    outcome: str


class RequestRef(_Model):
    id: str
    kind: str
    received_at: datetime
    status: str


class Person(_Model):
    subject_id: str
    emails: list[str]


class ErasedBefore(_Model):
    request: str = Field(description="The erasure request that erased the person before")
    completed_at: datetime | None = Field(description="When that erasure completed")
    note: str


class AccessBundle(_Model):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"$id": SCHEMA_ID})

    schema_: str = Field(alias="$schema", default=SCHEMA_ID)
    generated_at: datetime
    request: RequestRef
    person: Person
    systems: list[SystemData]
    partners: list[PartnerData]
    consent: list[ConsentNow]
    consent_history: list[ConsentEvent]
    contact_moments: list[Moment]
    erased_before: ErasedBefore | None = Field(
        default=None, description="For a person erased before who came back: that erasure. "
        "The systems were read again for this request; what they hold now is above")


ACCESS_SCHEMA: dict[str, Any] = {"$schema": "https://json-schema.org/draft/2020-12/schema",
                                  **AccessBundle.model_json_schema(by_alias=True)}


def bundle(desk: Desk, request_id: str) -> AccessBundle:
    """The bundle of an access or portability request (its exports must be gathered)."""
    request = get(desk, request_id)
    if request.kind not in ("access", "portability"):
        raise NotFound("not an access or portability request")
    with reader(desk.engine).connect() as conn:
        key = state.keys_of(conn, desk.keyring, [request.subject_id]).get(
            request.subject_id)
        if key is None:
            raise NotFound("nothing readable is held about this person any more")
        return AccessBundle(
            generated_at=desk.clock(),
            request=RequestRef(id=request.id, kind=request.kind,
                               received_at=request.received_at, status=request.status),
            person=Person(subject_id=request.subject_id,
                          emails=_emails(conn, request.subject_id, key)),
            systems=_systems(conn, request, key, desk.mappings),
            partners=_partners(conn, request.subject_id, desk.mappings),
            consent=_consent(conn, request.subject_id, desk),
            consent_history=_history(conn, request.subject_id, key),
            contact_moments=_moments(conn, request.subject_id),
            erased_before=_erased_before(conn, request.subject_id))


def _erased_before(conn: Connection, subject_id: str) -> ErasedBefore | None:
    earlier = rq.earlier_erasure(conn, subject_id)
    if earlier is None:
        return None
    return ErasedBefore(request=earlier.request_id, completed_at=earlier.completed_at,
                        note="everything privasync held about you was erased then, and every "
                             "system was asked to erase it; what the systems hold now came "
                             "in after that erasure")


def _emails(conn: Connection, subject_id: str, key: bytes) -> list[str]:
    found = []
    for token in conn.execute(select(identifiers.c.ciphertext).where(
            identifiers.c.subject_id == subject_id, identifiers.c.kind == "email")).scalars():
        plain = Keyring.decrypt(key, token)
        if plain is not None:
            found.append(plain.decode())
    return sorted(found)


def _systems(conn: Connection, request: rq.Request, key: bytes,
             mappings: Mappings) -> list[SystemData]:
    out = []
    for row in conn.execute(select(request_exports).where(
            request_exports.c.request_id == request.id).order_by(request_exports.c.destination)):
        plain = Keyring.decrypt(key, row.payload) if row.payload is not None else None
        data: dict[str, Any] = json.loads(plain) if plain is not None \
            else {"note": "unreadable", "fields": []}
        system = mappings.systems.get(row.destination)
        fields = []
        # Only ``fields``: records held for review (``review``) stay out until an admin
        # includes them (core.review moves an included record's fields here).
        for record, name, value, *kind in list(data["fields"]):
            mapped = system.fields.get(name.removeprefix("merge_fields.")) if system else None
            purposes = list(mapped.purposes) if mapped else []
            fields.append(HeldField(
                record=record, record_type=(kind[0] if kind else None) or None,
                field=name, value=value,
                canonical=mapped.canonical if mapped else None,
                category=mapped.category if mapped else None, purposes=purposes,
                legal_basis=[mappings.purposes[p].legal_basis.value for p in purposes
                             if p in mappings.purposes],
                source=row.destination))
        out.append(SystemData(system=row.destination, gathered_at=row.created_at,
                              note=_note(data), fields=fields))
    return out


def _note(data: dict[str, Any]) -> str:
    """The system's note, and what an admin's review decided since it was gathered."""
    note = str(data.get("note", ""))
    reviewed = data.get("reviewed") or {}
    if reviewed:
        note += (f"; after review: {reviewed.get('include', 0)} record(s) added to this "
                 f"answer, {reviewed.get('exclude', 0)} left out as not about you")
    return note


def _partners(conn: Connection, subject_id: str, mappings: Mappings) -> list[PartnerData]:
    out = []
    for name, partner in sorted(mappings.partners.items()):
        destination = f"partner:{name}"
        # Done jobs, and what pruned ones sent (``disclosures``: the last sending of a day).
        found = [*conn.execute(select(disclosures.c.last_at, disclosures.c.kind,
                                      disclosures.c.sent).where(
                    disclosures.c.subject_id == subject_id,
                    disclosures.c.destination == destination)),
                 *conn.execute(select(jobs.c.done_at, jobs.c.kind, jobs.c.sent).where(
                    jobs.c.subject_id == subject_id, jobs.c.destination == destination,
                    jobs.c.status == "done"))]
        sent = [Disclosure(at=at, kind=kind, fields=[f for f in (what or "").split(",") if f])
                for at, kind, what in sorted(found, key=lambda r: r[0])]
        out.append(PartnerData(partner=name, agreement=partner.agreement,
                               purposes=list(partner.purposes),
                               identifiers=list(partner.identifiers), sent=sent))
    return out


def _consent(conn: Connection, subject_id: str, desk: Desk) -> list[ConsentNow]:
    return [ConsentNow(purpose=c.purpose, channel=c.channel.value, status=c.status.value,
                       decided_at=c.occurred_at, source=c.source,
                       evidence=None if c.evidence is None else {
                           "source": c.evidence.source, "method": c.evidence.method,
                           "wording_version": c.evidence.wording_version,
                           "proof_reference": c.evidence.proof_reference})
            for c in sorted(state.load(conn, subject_id, desk.keyring).values(),
                            key=lambda c: (c.purpose, c.channel.value))]


def _history(conn: Connection, subject_id: str, key: bytes) -> list[ConsentEvent]:
    out = []
    for row in conn.execute(select(ledger.c.at, ledger.c.kind, ledger.c.detail).where(
            ledger.c.subject_id == subject_id, ledger.c.kind.like("consent.%"))
            .order_by(ledger.c.seq)):
        plain = Keyring.decrypt(key, row.detail) if row.detail is not None else None
        out.append(ConsentEvent(at=row.at, what=row.kind,
                                detail=json.loads(plain) if plain is not None else {}))
    return out


def _moments(conn: Connection, subject_id: str) -> list[Moment]:
    return [Moment(at=r.occurred_at, source=r.source, what=r.kind, outcome=r.outcome)
            for r in conn.execute(select(events.c.occurred_at, events.c.source, events.c.kind,
                                         events.c.outcome)
                                  .where(events.c.subject_id == subject_id)
                                  .order_by(events.c.occurred_at))]


def markdown(b: AccessBundle) -> str:
    """A summary a person can read, of the same bundle."""
    lines = [f"# Your personal data ({b.request.kind} request {b.request.id})", "",
             f"Made on {b.generated_at:%Y-%m-%d %H:%M %Z}. Addresses we know you by: "
             f"{', '.join(b.person.emails) or 'none'}.", ""]
    if b.erased_before is not None:
        when = (f"{b.erased_before.completed_at:%Y-%m-%d %H:%M %Z}"
                if b.erased_before.completed_at else "not completed")
        lines += ["## Erased before", "", f"Erasure request {b.erased_before.request} "
                  f"(completed {when}): {b.erased_before.note}.", ""]
    for s in b.systems:
        lines += [f"## {s.system}", "", s.note or f"{len(s.fields)} field(s).", ""]
        lines += [f"- {f.record}{f' ({f.record_type})' if f.record_type else ''} · "
                  f"{f.field}: {f.value}"
                  + (f" (used for {', '.join(f.purposes)})" if f.purposes else "")
                  for f in s.fields]
        lines.append("")
    lines += ["## Your consent", ""]
    lines += [f"- {c.purpose} by {c.channel}: {c.status} since {c.decided_at:%Y-%m-%d} "
              f"(from {c.source})" for c in b.consent] or ["- none recorded"]
    lines += ["", "## Partners we work with", ""]
    for p in b.partners:
        lines.append(f"- {p.partner} ({p.agreement}): {len(p.sent)} update(s) sent, for "
                     f"{', '.join(p.purposes)}")
    lines += ["", "## Contact moments", ""]
    lines += [f"- {m.at:%Y-%m-%d %H:%M} {m.source}: {m.what}" for m in b.contact_moments] \
        or ["- none"]
    return "\n".join(lines) + "\n"
