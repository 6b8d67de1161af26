"""The HubSpot connector: webhooks in (signature v3), consent out (comms prefs v4),
record fields out (contacts batch update), erasure (GDPR delete) and export (batch reads)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from connectors.hubspot.consent import WRITE_LIMIT, ConsentWriter
from connectors.hubspot.contacts import ContactReader
from connectors.hubspot.erasure import ERASE_BATCH, Eraser
from connectors.hubspot.errors import HUBSPOT
from connectors.hubspot.events import SYSTEM, EventTranslator
from connectors.hubspot.export import EXPORT_BATCH, Exporter
from connectors.hubspot.limits import WindowedSession, default_window
from connectors.hubspot.records import RECORD_LIMIT, RecordWriter
from connectors.hubspot.sdk import HubSpotSdk
from connectors.hubspot.signature import verify
from connectors.hubspot.token import CONSENT, ERASURE, READS, RECORDS, Need, check_scopes
from connectors.ratelimits import Window
from connectors.transport import send
from core.errors import PermanentError
from core.mappings import SystemMapping
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

# Raw HTTP although hubspot-api-client 12 has it (definition_api.get_page): the check runs
# on the windowed session with the consent writer's error table.
DEFINITIONS_PATH = "/communication-preferences/v3/definitions"


class HubSpotConnector:
    """Verifies and translates HubSpot webhooks; makes HubSpot hold subjects' consent.

    Implements core.ports.ConsentDestination, RecordDestination, ErasureDestination and
    ExportSource. Builds clients only; nothing connects until a method is called. Every
    call takes a slot of ``window`` (HubSpot's rate window, shared by every process that
    shares it; by default this process's own).
    """

    def __init__(self, *, base_url: str, access_token: str, client_secret: str | None,
                 mapping: SystemMapping, timeout: float = 10.0,
                 window: Window | None = None,
                 allow_legacy_signatures: bool = False) -> None:
        self._base_url = base_url.rstrip("/")
        self._client_secret = client_secret
        self._allow_legacy = allow_legacy_signatures
        self._mapping = mapping
        self.window = window or default_window(timeout)
        self._session = WindowedSession(timeout, self.window)
        self._session.headers["Authorization"] = f"Bearer {access_token}"
        self._token = access_token
        self._translator = EventTranslator(mapping)
        sdk = HubSpotSdk(base_url=self._base_url, access_token=access_token, timeout=timeout,
                         window=self.window)
        self._reader = ContactReader(sdk)
        self._eraser = Eraser(sdk, self._reader)
        self._exporter = Exporter(sdk, self._reader)
        self._writer = ConsentWriter(base_url=self._base_url, session=self._session,
                                     mapping=mapping)
        self._records = RecordWriter(base_url=self._base_url, session=self._session,
                                     mapping=mapping)

    @property
    def name(self) -> str:
        return SYSTEM

    @property
    def batch_size(self) -> int:
        """Subjects per apply_consent call: one v4 batch (100 rows) over rows per subject."""
        return max(1, WRITE_LIMIT // self._writer.rows_per_subject)

    @property
    def record_batch_size(self) -> int:
        """Records per push_fields call: one contacts batch update (100 inputs)."""
        return RECORD_LIMIT

    @property
    def erase_batch_size(self) -> int:
        """People per erase call: each costs one GDPR delete per address (HubSpot has no
        batch form); the reads are batched, three calls while the batch has ≤ 100 addresses."""
        return ERASE_BATCH

    @property
    def export_batch_size(self) -> int:
        """People per export call: three calls for the batch's contacts and ten for their
        contact moments, answers kept a sensible size."""
        return EXPORT_BATCH

    def verify_signature(self, *, method: str, url: str, body: bytes,
                         headers: Mapping[str, str], now: datetime) -> None:
        """Raise Unauthenticated unless HubSpot signed this request (v3, within 5 minutes;
        v1/v2 too where legacy signatures are allowed)."""
        verify(secret=self._client_secret, method=method, url=url, body=body,
               headers=headers, now=now, allow_legacy=self._allow_legacy)

    def parse_events(self, body: bytes) -> list[CanonicalEvent]:
        """Canonical events of a webhook batch, ordered by occurrence; BadInput if malformed."""
        return self._translator.parse(body)

    def validate(self, body: bytes) -> int:
        """The number of events of a valid webhook batch; BadInput as ``parse_events``."""
        return self._translator.validate(body)

    def parse(self, body: bytes, received_at: datetime) -> list[CanonicalEvent]:
        """``parse_events`` as a core.ports.EventParser (HubSpot events carry their time)."""
        return self._translator.parse(body)

    def lookup_emails(self, refs: Sequence[SystemRef]) -> dict[SystemRef, str]:
        """E-mail addresses of HubSpot contacts; unknown ones are absent. Raises DeliveryError."""
        return self._reader.emails(refs)

    def apply_consent(self, subjects: Sequence[DestinationSubject]) -> list[Outcome]:
        """Write each subject's subscription statuses in one call. Raises DeliveryError."""
        return self._writer.apply(subjects)

    def push_fields(self, records: Sequence[DestinationRecord]) -> list[Outcome]:
        """Write mapped fields to existing contacts in one batch update (plus one batch
        read by e-mail for records without a contact ref); never creates a contact.
        Raises DeliveryError when the whole call failed."""
        return self._records.push(records)

    def erase(self, people: Sequence[PersonAt]) -> list[ErasureReceipt]:
        """GDPR-delete every contact of each person (by address, and by ref where no known
        address reaches it), then read back. Raises DeliveryError when nothing could be done."""
        return self._eraser.erase(people)

    def export(self, people: Sequence[PersonAt]) -> list[ExportResult]:
        """Every set property of every contact HubSpot holds for each person, and the
        e-mails, calls, meetings, notes and tasks associated with them. Raises DeliveryError
        when a call failed."""
        return self._exporter.export(people)

    def check(self) -> None:
        """Raise DeliveryError if HubSpot is unreachable or rejects us, if the token lacks a
        scope a configured feature needs (when HubSpot tells its scopes), or if the mapping
        names a contact property the portal does not define or will not let us write, or a
        subscription id it does not have."""
        check_scopes(self._session, self._base_url, self._token, self._needs())
        self._check_properties()
        if self._consent_mapped:
            self._check_subscriptions()

    @property
    def _consent_mapped(self) -> bool:
        return bool(self._mapping.consent.subscriptions or self._mapping.consent.all_email)

    def _needs(self) -> list[Need]:
        """The calls each configured feature makes: reads and erasure always (a HubSpot
        destination looks up, erases and exports), record fields and consent if mapped."""
        needs = [*READS, *ERASURE]
        if self._records.written_properties():
            needs += RECORDS
        if self._consent_mapped:
            needs += CONSENT
        return needs

    def _check_properties(self) -> None:
        """Every mapped contact property exists; every one privasync writes is writable."""
        defined = self._exporter.property_definitions()
        unknown = sorted(n for n in self._mapping.fields if n not in defined)
        read_only = sorted(n for n in self._records.written_properties() if defined.get(n))
        problems = ([f"{', '.join(unknown)} not defined in the portal"] if unknown else []) + \
            ([f"{', '.join(read_only)} read-only"] if read_only else [])
        if problems:
            raise PermanentError("hubspot contact properties: mapped propert(ies) "
                                 f"{'; '.join(problems)}", error_class="hubspot_properties")

    def _check_subscriptions(self) -> None:
        what = "hubspot definitions"
        response = send(self._session, "GET", self._base_url + DEFINITIONS_PATH, what=what,
                        errors=HUBSPOT, accept=(200,), blips=False)
        try:
            known = {str(d.get("id")) for d in response.json().get("subscriptionDefinitions", [])}
        except (ValueError, AttributeError):
            raise PermanentError(f"{what}: unexpected answer",
                                 error_class="hubspot_bad_response") from None
        missing = sorted(set(self._mapping.consent.subscriptions) - known)
        if missing:
            raise PermanentError(f"{what}: mapped subscription(s) {', '.join(missing)} do not "
                                 "exist in the portal", error_class="hubspot_mapping")
