"""What the core needs from the outside world, as small protocols.

A connector implements the parts it can do. Whole-call failures raise
``TransientError``/``PermanentError`` (core.errors); per-subject failures come
back as ``Outcome.error``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from core.erasure_record import ErasureRecord
from core.model import (
    CanonicalEvent,
    DestinationRecord,
    DestinationSubject,
    ErasureReceipt,
    ExportResult,
    Outcome,
    PersonAt,
    SystemRef,
)


class EventParser(Protocol):
    """Turns a stored delivery of one source back into canonical events."""

    def __call__(self, body: bytes, received_at: datetime) -> Sequence[CanonicalEvent]:
        """Raise BadInput if the body is not a valid delivery."""
        ...


class RefResolver(Protocol):
    """A system that can name the e-mail address behind its own record references."""

    def lookup_emails(self, refs: Sequence[SystemRef]) -> Mapping[SystemRef, str]:
        """Addresses of the records found; unknown ones are absent. Raises DeliveryError."""
        ...


class Directory(Protocol):
    """A system that can list, in bulk, the addresses on its own list.

    Each read must be whole or raise: core.directory relies on an address missing from a
    read that ended having been off the list (see there).
    """

    def addresses(self) -> Iterable[str]:
        """Every address it holds as a member. Raises DeliveryError."""
        ...

    def kept(self) -> Iterable[str]:
        """Every address it keeps without counting it as a member (Mailchimp's archived
        contacts), which a withdrawal must still reach. Raises DeliveryError."""
        ...


class ConsentDestination(Protocol):
    """A system that can be made to agree with subjects' current consent."""

    @property
    def name(self) -> str:
        """The destination's name in mappings and metrics (``hubspot``, ``partner:acme``)."""
        ...

    @property
    def batch_size(self) -> int:
        """How many subjects one ``apply_consent`` call may carry."""
        ...

    def apply_consent(self, subjects: Sequence[DestinationSubject]) -> Sequence[Outcome]:
        """Make the destination hold each subject's current consent. Idempotent.

        Returns one Outcome per subject. Raises TransientError or
        PermanentError when the whole call failed.
        """
        ...

    def check(self) -> None:
        """Raise DeliveryError if the destination cannot be reached or rejects us."""
        ...


class RecordDestination(Protocol):
    """A system that can receive a subject's (already minimised) fields."""

    @property
    def name(self) -> str: ...

    @property
    def record_batch_size(self) -> int:
        """How many records one ``push_fields`` call may carry."""
        ...

    def push_fields(self, records: Sequence[DestinationRecord]) -> Sequence[Outcome]:
        """Write each record's fields (canonical names; the connector translates them).

        Returns one Outcome per record. Must never create a record the
        destination did not hold. Raises TransientError or PermanentError when
        the whole call failed.
        """
        ...


class ErasureDestination(Protocol):
    """A system that can erase a person (Art. 17) and, where it allows a read, verify it."""

    @property
    def name(self) -> str: ...

    @property
    def erase_batch_size(self) -> int:
        """How many people one ``erase`` call may carry."""
        ...

    def erase(self, people: Sequence[PersonAt]) -> Sequence[ErasureReceipt]:
        """Remove every record of each person the system holds, then read back to verify.

        Idempotent: a person already gone is a DONE receipt (verified absent). One receipt
        per person, in order; a per-person failure is its receipt's ``error``. Raises
        TransientError or PermanentError when the whole call failed.
        """
        ...


class ExportSource(Protocol):
    """A system that can tell what it holds about a person (Art. 15, 20)."""

    @property
    def name(self) -> str: ...

    @property
    def export_batch_size(self) -> int: ...

    def export(self, people: Sequence[PersonAt]) -> Sequence[ExportResult]:
        """Every field of every record the system holds for each person, under the vendor's
        field names. One result per person, in order. Raises TransientError or
        PermanentError when the whole call failed."""
        ...


class Notifier(Protocol):
    """Tells the person what became of their request (an erasure done, a rejection, an
    extension of its deadline)."""

    def notify(self, to: str, *, kind: str, request_id: str, at: datetime,
               reason: str = "") -> Mapping[str, str]:
        """Send the notice of ``kind`` (``erasure``, ``rejection``, ``extension``) to ``to``;
        ``at`` is when it was done or decided, for an extension the new deadline; ``reason``
        the admin's, for a rejection or an extension. Returns a receipt without personal
        data (the server's answer, a message id). Raises TransientError or PermanentError."""
        ...


class ErasureLog(Protocol):
    """Where completed erasures are kept apart from the database, so that a restored backup
    can be checked against them (core.erasures, core.restore)."""

    def ensure(self) -> None:
        """Create the log, empty, if it does not exist. Raises OSError if it cannot."""
        ...

    def append(self, records: Sequence[ErasureRecord]) -> None:
        """Append these erasures durably; one already there (same request id) is not
        appended again. Raises OSError or ConfigError if the log cannot be written."""
        ...

    def read(self) -> Sequence[ErasureRecord]:
        """Every erasure logged, oldest first. Raises ConfigError if the log is missing or
        a line cannot be read."""
        ...
