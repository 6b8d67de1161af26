"""Signed consent and record updates and erasure requests to a partner (Art. 28, 17(2)).

Each batch is one JSON POST of one ``kind``: ``consent`` carries, per subject,
only the purposes the partner serves; ``record`` carries only the fields the
core let through for this partner (already minimised); ``erasure`` asks it to
erase people, each under our request id. All carry only the identifiers its
agreement declares, and an erasure only the addresses updates carried to it: each
address sent is remembered as a keyed reference at the partner (``disclosed_ref``), so
asking the partner to erase never tells it an address it was not given. For updates
a 2xx is the partner's acknowledgement (its event id is kept as the receipt); an
erasure is done only when the partner later posts a signed acknowledgement naming
the request id (``connectors.partner.acks``).
"""

from __future__ import annotations

import json
import logging
import socket
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from connectors.partner.acks import FIELDS as ACK_FIELDS
from connectors.partner.acks import parse_ack
from connectors.partner.asks import FIELDS as ASK_FIELDS
from connectors.partner.asks import parse_ask
from connectors.signing import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
    verify,
)
from connectors.transport import PLAIN, TimeoutSession, send
from core import strict_json
from core.crypto import normalise_email
from core.errors import ConfigError, TransientError
from core.mappings import Partner
from core.model import (
    CanonicalEvent,
    DestinationRecord,
    DestinationSubject,
    ErasureReceipt,
    ErasureStatus,
    Outcome,
    PersonAt,
    RequestAcknowledged,
    RequestReceived,
)

log = logging.getLogger(__name__)

# Fields of either signed message a partner sends: reasons may name them.
MESSAGE_FIELDS = frozenset(ACK_FIELDS) | frozenset(ASK_FIELDS)


class DisclosureKeys(Protocol):
    """Keyed references (core.crypto.Keyring): how privasync remembers an address it sent."""

    def keyed_ref(self, kind: str, value: str) -> str: ...

    def keyed_refs(self, kind: str, value: str) -> list[str]: ...


def disclosed_ref(keys: DisclosureKeys, email: str) -> str:
    """The reference stored at the partner for an address sent to it: keyed, current version
    (a digest rotation moves it like any keyed reference; an erasure deletes it)."""
    return f"email:{keys.keyed_ref('email', normalise_email(email))}"


def disclosed(keys: DisclosureKeys, person: PersonAt) -> list[str]:
    """The person's addresses that updates carried to this partner (at any live key version)."""
    held = set(person.refs)
    return [e for e in person.emails
            if any(f"email:{r}" in held for r in keys.keyed_refs("email", normalise_email(e)))]


def http_endpoint(url: str, what: str = "partner url") -> tuple[str, int]:
    """Host and port of an http(s) URL; ConfigError (naming ``what``) when it is not one."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{what} must be an absolute http(s) URL")
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"{what} has an invalid port") from exc
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


class PartnerConnector:
    """A ``ConsentDestination``, ``RecordDestination`` and ``ErasureDestination`` POSTing
    HMAC-signed batches; it also checks and reads the partner's acknowledgements."""

    def __init__(self, *, name: str, partner: Partner, url: str, secret: str,
                 keys: DisclosureKeys, timeout: float = 10.0) -> None:
        if not secret:
            raise ConfigError(f"partner {name}: signing secret is empty")
        self._name = name
        self._partner = partner
        self._url = url
        self._endpoint = http_endpoint(url)
        self._secret = secret
        self._keys = keys
        self._timeout = timeout
        self._session = TimeoutSession(timeout)

    @property
    def name(self) -> str:
        return f"partner:{self._name}"

    @property
    def batch_size(self) -> int:
        return 100

    @property
    def record_batch_size(self) -> int:
        return 100

    @property
    def erase_batch_size(self) -> int:
        return 100

    def _identified(self, subject_id: str, email: str | None) -> dict[str, Any]:
        """The subject id, and the address only if the agreement declares it."""
        entry: dict[str, Any] = {"subject_id": subject_id}
        if "email" in self._partner.identifiers and email:
            entry["email"] = email
        return entry

    def _subject(self, subject: DestinationSubject) -> dict[str, Any]:
        """Minimise: only the partner's purposes, only its declared identifiers."""
        entry = self._identified(subject.subject_id, subject.email)
        entry["consents"] = [
            {"purpose": c.purpose, "channel": c.channel.value, "status": c.status.value,
             "occurred_at": c.occurred_at.isoformat()}
            for c in subject.consents if c.purpose in self._partner.purposes
        ]
        return entry

    def _record(self, record: DestinationRecord) -> dict[str, Any]:
        """The given fields only (canonical names); None tells the partner to clear one."""
        entry = self._identified(record.subject_id, record.email)
        entry["fields"] = dict(record.fields)
        return entry

    def _sent_to(self, email: str | None) -> tuple[str, ...]:
        """The reference that remembers ``email`` went to this partner (none if it did not)."""
        if "email" in self._partner.identifiers and email:
            return (disclosed_ref(self._keys, email),)
        return ()

    def _erasure(self, person: PersonAt) -> dict[str, Any]:
        """Our request id (the partner echoes it), our subject id, and the addresses we sent
        this partner. None sent (not declared, or no update ever carried one): the subject id
        alone, which every update we sent it carried, so it names whatever the partner holds
        from us; any other address would be a new disclosure, not an erasure (Art. 5(1)(c))."""
        entry: dict[str, Any] = {"request_id": person.request_id, "subject_id": person.subject_id}
        sent = disclosed(self._keys, person) if "email" in self._partner.identifiers else []
        if sent:
            entry["emails"] = sent
        return entry

    @staticmethod
    def _document(kind: str, entries: list[dict[str, Any]], event_id: str,
                  sent_at: datetime) -> bytes:
        key = "requests" if kind == "erasure" else "subjects"
        document = {"event_id": event_id, "sent_at": sent_at.isoformat(), "kind": kind,
                    key: entries}
        return json.dumps(document, separators=(",", ":"), sort_keys=True).encode("utf-8")

    def payload(self, subjects: Sequence[DestinationSubject], event_id: str,
                sent_at: datetime) -> bytes:
        """The exact bytes that are signed and sent for one consent batch."""
        return self._document("consent", [self._subject(s) for s in subjects], event_id, sent_at)

    def record_payload(self, records: Sequence[DestinationRecord], event_id: str,
                       sent_at: datetime) -> bytes:
        """The exact bytes that are signed and sent for one record batch."""
        return self._document("record", [self._record(r) for r in records], event_id, sent_at)

    def erasure_payload(self, people: Sequence[PersonAt], event_id: str,
                        sent_at: datetime) -> bytes:
        """The exact bytes that are signed and sent for one erasure batch."""
        return self._document("erasure", [self._erasure(p) for p in people], event_id, sent_at)

    def apply_consent(self, subjects: Sequence[DestinationSubject]) -> list[Outcome]:
        """Send one signed batch; every subject succeeds when the partner answers 2xx.

        Raises TransientError (429, 5xx, network) or PermanentError/AuthError
        (other 4xx) for the whole batch; the worker retries until a 2xx.
        """
        if not subjects:
            return []
        event_id = str(uuid.uuid4())
        self._deliver(self.payload(subjects, event_id, datetime.now(UTC)), event_id, "consent",
                      len(subjects))
        return [Outcome(subject_id=s.subject_id, learned_refs=self._sent_to(s.email),
                        note="acknowledged by partner", detail={"partner_event_id": event_id})
                for s in subjects]

    def push_fields(self, records: Sequence[DestinationRecord]) -> list[Outcome]:
        """Send the given fields in one signed batch; all succeed when the partner answers 2xx.

        Raises like ``apply_consent``.
        """
        if not records:
            return []
        event_id = str(uuid.uuid4())
        self._deliver(self.record_payload(records, event_id, datetime.now(UTC)), event_id,
                      "record", len(records))
        return [Outcome(subject_id=r.subject_id, learned_refs=self._sent_to(r.email),
                        note="acknowledged by partner", detail={"partner_event_id": event_id})
                for r in records]

    def erase(self, people: Sequence[PersonAt]) -> list[ErasureReceipt]:
        """Ask the partner, in one signed batch, to erase each person; all await its ack.

        A 2xx only says the partner has the request: each receipt is AWAITING_ACK under
        our request id until the partner's acknowledgement arrives. Raises like
        ``apply_consent``.
        """
        if not people:
            return []
        event_id = str(uuid.uuid4())
        status = self._deliver(self.erasure_payload(people, event_id, datetime.now(UTC)),
                               event_id, "erasure", len(people))
        return [ErasureReceipt(subject_id=p.subject_id, status=ErasureStatus.AWAITING_ACK,
                               vendor_status=status, vendor_request_id=p.request_id,
                               verified="asked; acknowledgement due") for p in people]

    def verify_ack(self, headers: Mapping[str, str], body: bytes, now: datetime) -> str:
        """Check an acknowledgement's signature (the partner's secret, our scheme, 300 s).

        Returns its event id, for the caller's replay check. Raises Unauthenticated.
        """
        return verify(self._secret, headers, body, now, fields=MESSAGE_FIELDS)

    def parse_ack(self, body: bytes, received_at: datetime) -> list[RequestAcknowledged]:
        """The verified acknowledgement as a canonical event. Raises BadInput."""
        return parse_ack(self.name, body, received_at)

    def parse_ask(self, body: bytes, received_at: datetime) -> list[RequestReceived]:
        """A verified request the partner passes on, as a canonical event. Raises BadInput."""
        return parse_ask(self.name, body, received_at)

    def parse_message(self, body: bytes, received_at: datetime) -> list[CanonicalEvent]:
        """Either kind of signed message from the partner (an ack, or a request passed on),
        told apart by the ``kind`` a request has. Raises BadInput."""
        document = strict_json.loads(body, "message")
        if isinstance(document, dict) and "kind" in document:
            return list(self.parse_ask(body, received_at))
        return list(self.parse_ack(body, received_at))

    def _deliver(self, body: bytes, event_id: str, kind: str, count: int) -> int:
        """Sign and POST one batch; log the receipt (ids and counts, never content).

        Returns the partner's HTTP status."""
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: timestamp,
                   EVENT_ID_HEADER: event_id,
                   SIGNATURE_HEADER: sign(self._secret, timestamp, body)}
        status = self._post(body, headers, f"{self.name} {kind} update")
        log.info("partner acknowledged batch", extra={
            "destination": self.name, "partner_event_id": event_id, "kind": kind,
            "subjects": count, "status": status})
        return status

    def _post(self, body: bytes, headers: dict[str, str], what: str) -> int:
        response = send(self._session, "POST", self._url, what=what, errors=PLAIN, data=body,
                        headers=headers)
        return response.status_code

    def check(self) -> None:
        """Open and close a TCP connection to the partner's host and port.

        A signed POST would deliver data and a GET is not part of the partner
        contract, so the check sends no bytes at all: it proves the URL parses,
        the host resolves and something listens there.
        """
        host, port = self._endpoint
        try:
            connection = socket.create_connection((host, port), timeout=self._timeout)
        except OSError as exc:
            raise TransientError(f"{self.name} check: {type(exc).__name__}",
                                 error_class="network") from exc
        connection.close()
