"""Canonical events and the views of a subject that destinations receive.

Connectors translate vendor payloads into these types at their edge; the core
never sees a vendor property name. Every timestamp is timezone-aware: it is
evidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from core.errors import BadInput


class Channel(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    SMS = "sms"
    WHATSAPP = "whatsapp"
    POST = "post"


class ConsentStatus(StrEnum):
    GRANTED = "granted"
    WITHDRAWN = "withdrawn"


def require_aware(when: datetime, what: str) -> datetime:
    """Return ``when`` if it carries a zone; raise BadInput otherwise."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise BadInput(f"{what} has no timezone; timestamps are evidence and must carry one")
    return when


@dataclass(frozen=True)
class SystemRef:
    """A record in one system: ``SystemRef("hubspot", "contact:123")``."""

    system: str
    ref: str

    def __str__(self) -> str:
        return f"{self.system}:{self.ref}"


@dataclass(frozen=True)
class SubjectHint:
    """What a connector knows about the person an event is about.

    Intake resolves it: by reference first, then by e-mail, else a new subject.
    """

    ref: SystemRef | None = None
    email: str | None = None

    def __post_init__(self) -> None:
        if self.ref is None and not self.email:
            raise BadInput("an event must name a record or an e-mail address")


@dataclass(frozen=True)
class Evidence:
    """Proof of a consent decision (Art. 7(1)): how and where it was given."""

    source: str
    method: str
    wording_version: str | None = None
    proof_reference: str | None = None


@dataclass(frozen=True)
class ConsentChange:
    purpose: str
    channel: Channel
    status: ConsentStatus


@dataclass(frozen=True)
class EventMeta:
    """Where an event came from. ``(source, source_event_id)`` is its dedupe key."""

    source: str
    source_event_id: str
    occurred_at: datetime
    kind: str = ""

    def __post_init__(self) -> None:
        require_aware(self.occurred_at, "occurred_at")
        if not self.source_event_id:
            raise BadInput("an event needs an id to be deduplicated")


@dataclass(frozen=True)
class ConsentChanged:
    """A system says the subject's consent for some purposes changed.

    A grant without ``evidence`` is recorded and flagged but never propagated.
    """

    meta: EventMeta
    subject: SubjectHint
    changes: tuple[ConsentChange, ...]
    evidence: Evidence | None = None


@dataclass(frozen=True)
class SubjectSeen:
    """A record was created (or first seen) in a system."""

    meta: EventMeta
    subject: SubjectHint


@dataclass(frozen=True)
class SubjectDeleted:
    """A record was removed from one system. Not a GDPR request."""

    meta: EventMeta
    subject: SubjectHint


@dataclass(frozen=True)
class ErasureRequested:
    """A system recorded an Art. 17 request (e.g. a HubSpot privacy deletion)."""

    meta: EventMeta
    subject: SubjectHint


@dataclass(frozen=True)
class SubjectsMerged:
    """Records were merged in a system; ``merged`` now live on as ``primary``."""

    meta: EventMeta
    primary: SubjectHint
    merged: tuple[SystemRef, ...]


@dataclass(frozen=True)
class FieldValue:
    """A field's value as the source holds it; ``collected_at`` starts its retention clock.

    ``value`` None means the field was cleared.
    """

    value: str | None
    collected_at: datetime

    def __post_init__(self) -> None:
        require_aware(self.collected_at, "collected_at")


@dataclass(frozen=True)
class RecordChanged:
    """Mapped fields of a record changed (or were rectified, Art. 16) in a system.

    ``fields`` uses canonical names: the vendor's names stop at the connector.
    """

    meta: EventMeta
    subject: SubjectHint
    fields: tuple[tuple[str, FieldValue], ...]


@dataclass(frozen=True)
class IdentifierChanged:
    """A system changed the subject's e-mail address (e.g. Mailchimp ``upemail``)."""

    meta: EventMeta
    subject: SubjectHint
    new_email: str
    new_ref: SystemRef | None = None


class RequestKind(StrEnum):
    """What a person asked (GDPR Art. 15-21)."""

    ERASURE = "erasure"              # Art. 17
    ACCESS = "access"                # Art. 15
    PORTABILITY = "portability"      # Art. 20
    OBJECTION = "objection"          # Art. 21: every marketing purpose, every channel
    RECTIFICATION = "rectification"  # Art. 16: a corrected value, pushed everywhere


@dataclass(frozen=True)
class RequestReceived:
    """A data-subject request, as customer service typed it in or a partner sent it.

    ``request_id`` is chosen where the request came in (so the asker can follow it);
    ``identity_verified`` False pauses its clock until it is (Art. 12(6)); ``fields`` are
    the corrected values of a rectification; ``actor`` who recorded it (a token's name,
    ``cli``, ``partner:NAME``).
    """

    meta: EventMeta
    subject: SubjectHint
    kind: RequestKind
    request_id: str
    identity_verified: bool = True
    fields: tuple[tuple[str, FieldValue], ...] = ()
    actor: str = ""


class RequestStep(StrEnum):
    """What can happen to a request after it came in."""

    VERIFY_IDENTITY = "verify_identity"   # the clock runs again
    EXTEND = "extend"                     # once, by 1 or 2 months, with a reason
    REJECT = "reject"                     # with a reason; the person may complain
    NOT_APPLICABLE = "not_applicable"     # a destination, with the admin's reason
    REVIEW = "review"                     # held records included or excluded, with a reason
    RETRY = "retry"                       # a failed destination is tried again
    CONFIRMED = "confirmed"               # the person was told (privasync, internal)
    EXTENSION_TOLD = "extension_told"     # the person was told of the extension (internal)
    NOT_TOLD = "not_told"                 # the notice could not be delivered (internal)
    FINISH = "finish"                     # every destination ended (privasync, internal)


@dataclass(frozen=True)
class RequestAction:
    """Someone moves a request on: an admin (``actor`` a token's name or ``cli``) or
    privasync itself (``actor`` ``privasync``). ``records`` (a review): each record held
    for review with the admin's decision, ``INCLUDE`` or ``EXCLUDE``."""

    meta: EventMeta
    request_id: str
    step: RequestStep
    reason: str = ""
    months: int = 0
    destination: str = ""
    actor: str = ""
    receipt: tuple[tuple[str, str], ...] = ()
    records: tuple[tuple[str, str], ...] = ()


# An admin's decision on a record held for review (RequestStep.REVIEW).
INCLUDE, EXCLUDE = "include", "exclude"


@dataclass(frozen=True)
class RequestAcknowledged:
    """A partner or processor says how it handled a request it was sent (Art. 28, 17(2)).

    ``detail`` is the processor's own short words (no personal data is asked for);
    ``proof`` a hash of the signed body, kept in the ledger as the receipt;
    ``signed_body`` and ``signed_headers`` the delivery exactly as it was signed (when
    the inbox kept them), so the proof and the signature can be checked again later.
    """

    meta: EventMeta
    destination: str
    request_id: str
    completed: bool
    detail: str = ""
    proof: str = ""
    signed_body: bytes = field(default=b"", repr=False)
    signed_headers: tuple[tuple[str, str], ...] = ()



@dataclass(frozen=True)
class ConsentState:
    """The current decision for one (purpose, channel) of a subject."""

    purpose: str
    channel: Channel
    status: ConsentStatus
    occurred_at: datetime
    source: str
    evidence: Evidence | None = None


@dataclass(frozen=True)
class DestinationSubject:
    """What a destination is told about one subject: its refs there and its consent.

    ``email`` is decrypted only for the duration of the job. ``listed``: the
    destination's own list holds the address as a member (as of its last bulk read).
    ``unlisted_at``: when the last complete bulk read of that list began, if it held none
    of the subject's addresses, not even as one it keeps without counting (core.directory):
    the subject was not on the list then, unless the list changed since.
    """

    subject_id: str
    email: str | None
    refs: tuple[str, ...]
    consents: tuple[ConsentState, ...]
    event_id: str = ""
    listed: bool = False
    unlisted_at: datetime | None = None

    def status(self, purpose: str, channel: Channel = Channel.EMAIL) -> ConsentStatus | None:
        for c in self.consents:
            if c.purpose == purpose and c.channel == channel:
                return c.status
        return None


@dataclass(frozen=True)
class Outcome:
    """The result of applying state for one subject at one destination.

    ``error`` is None on success. ``learned_refs`` are references the
    destination found (e.g. a Salesforce Contact id looked up by e-mail) that
    intake should remember. ``note`` is a short receipt, never personal data.
    """

    subject_id: str
    error: Exception | None = None
    learned_refs: tuple[str, ...] = ()
    note: str = ""
    detail: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DestinationRecord:
    """Fields a destination may receive for one subject, already minimised.

    ``fields`` maps canonical names to values (None clears the field); ``listed`` and
    ``unlisted_at`` as for DestinationSubject.
    """

    subject_id: str
    email: str | None
    refs: tuple[str, ...]
    fields: Mapping[str, str | None]
    listed: bool = False
    unlisted_at: datetime | None = None


@dataclass(frozen=True)
class PersonAt:
    """What locates one person at one destination, for erasing or exporting: every address
    privasync knows for them (decrypted for the duration of the job) and their refs there.

    ``request_id`` names the data-subject request the work is for (a vendor may take it
    as its own request id, a partner echoes it in its acknowledgement).
    """

    subject_id: str
    request_id: str
    emails: tuple[str, ...]
    refs: tuple[str, ...] = ()


class ErasureStatus(StrEnum):
    DONE = "done"                  # gone, and verified gone wherever a read can tell
    AWAITING_ACK = "awaiting_ack"  # asked (a partner, a processor): done when it acknowledges


@dataclass(frozen=True)
class ErasureReceipt:
    """The proof of one erasure at one destination. Never personal data: counts, ids,
    status codes and what was read back to verify.

    ``error`` is None on success; ``vendor_status`` the HTTP status of the erasing call,
    ``vendor_request_id`` the vendor's id for it (if it returns one), ``verified`` what was
    checked afterwards (e.g. ``"GET contact by email: 404"``), ``records`` how many records
    were removed.
    """

    subject_id: str
    status: ErasureStatus = ErasureStatus.DONE
    error: Exception | None = None
    vendor_status: int | None = None
    vendor_request_id: str | None = None
    verified: str = ""
    records: int = 0


@dataclass(frozen=True)
class ExportedField:
    """One value a system holds about the person: in which record, under the vendor's
    field name (the core adds canonical name, category, purposes and basis).

    ``kind`` names the record's type in words a person can read (``contact``, ``logged
    e-mail``, ``task``, ``case``...); a record merged into the person's carries it too
    (``contact merged into contact:1001``)."""

    record: str
    field: str
    value: str | None
    kind: str = ""


@dataclass(frozen=True)
class HeldForReview:
    """A record a system returned for the person that may be someone else's (it matched
    only by an address another record shares, not by a known id): kept out of the answer
    until an admin includes it. ``reason`` says why, without personal data."""

    record: str
    reason: str
    fields: tuple[ExportedField, ...] = ()


@dataclass(frozen=True)
class ExportResult:
    """What one system holds about one person (Art. 15, 20); ``error`` if it could not say.

    ``review``: records set aside for an admin's review, never sent to the person as they
    are (see HeldForReview)."""

    subject_id: str
    fields: tuple[ExportedField, ...] = ()
    error: Exception | None = None
    note: str = ""
    review: tuple[HeldForReview, ...] = ()


CanonicalEvent = (ConsentChanged | SubjectSeen | SubjectDeleted | ErasureRequested
                  | SubjectsMerged | IdentifierChanged | RecordChanged | RequestReceived
                  | RequestAction | RequestAcknowledged)
