"""privasync's Salesforce connector: a change source (poll), a consent and a record
destination, an erasure destination and an export source."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from connectors.ratelimits import Allowance
from connectors.salesforce.client import Credentials, SalesforceClient
from connectors.salesforce.destination import Destination
from connectors.salesforce.erasure import Eraser
from connectors.salesforce.export import Exporter
from connectors.salesforce.people import COLLECTION_LIMIT
from connectors.salesforce.permissions import check_permissions
from connectors.salesforce.poller import Poller, PollResult, SalesforceCursor
from connectors.salesforce.records import RecordWriter
from core.errors import ConfigError, Throttled, TransientError
from core.mappings import SystemMapping
from core.model import (
    DestinationRecord,
    DestinationSubject,
    ErasureReceipt,
    ExportResult,
    Outcome,
    PersonAt,
)

# Used up, the daily allocation frees slowly (rolling 24 h); check again later.
EXHAUSTED_RETRY_AFTER = 900.0
# People per erase call: the lookups and read-backs cost the same for 1 or 50, and 50
# people's addresses and refs keep each query's URL below Salesforce's limit.
ERASE_BATCH = 50
# People per export call: fewer, as each query also lists every field of the type.
EXPORT_BATCH = 25


class SalesforceConnector:
    """Contacts and Leads: polls their opt-outs, erasure flags, mapped fields and deletions;
    writes opt-outs and mapped fields; erases and exports people. Implements
    ConsentDestination, RecordDestination, ErasureDestination and ExportSource.

    Nothing connects until the first call; the login mode logs in then. With an
    ``allowance``, every call but the ``/limits`` reading is admitted by it.
    """

    def __init__(self, *, instance_url: str, mapping: SystemMapping,
                 session_id: str | None = None, username: str | None = None,
                 password: str | None = None, security_token: str | None = None,
                 domain: str = "login", version: str = "59.0", timeout: float = 10.0,
                 allowance: Allowance | None = None, hard_delete: bool = False) -> None:
        if session_id is None and None in (username, password, security_token):
            raise ConfigError("salesforce needs a session_id, or a username, password "
                              "and security_token")
        credentials = Credentials(instance_url=instance_url, session_id=session_id,
                                  username=username, password=password,
                                  security_token=security_token, domain=domain,
                                  version=version, timeout=timeout)
        self._client = SalesforceClient(credentials, allowance)
        self._mapping = mapping
        # Whether erasure purges what it deletes from the Recycle Bin (SOAP
        # emptyRecycleBin) and verifies by queryAll; ``check`` names it with the rights.
        self._hard_delete = hard_delete
        self.allowance = allowance
        self._poller = Poller(self._client, mapping)
        self._destination = Destination(self._client, mapping.consent.all_email)
        self._records = RecordWriter(self._client, mapping)
        self._eraser = Eraser(self._client, hard_delete=hard_delete)
        self._exporter = Exporter(self._client)

    @property
    def name(self) -> str:
        return "salesforce"

    @property
    def batch_size(self) -> int:
        return COLLECTION_LIMIT

    @property
    def record_batch_size(self) -> int:
        return COLLECTION_LIMIT

    @property
    def erase_batch_size(self) -> int:
        return ERASE_BATCH

    @property
    def export_batch_size(self) -> int:
        return EXPORT_BATCH

    def poll(self, cursor: SalesforceCursor | None, now: datetime) -> PollResult:
        """Events since ``cursor`` (or the last day). Raises DeliveryError subclasses."""
        return self._poller.poll(cursor, now)

    def apply_consent(self, subjects: Sequence[DestinationSubject]) -> list[Outcome]:
        """Set each subject's e-mail opt-out, and "Don't Solicit" on the records'
        Individuals (one lookup query per type, one PATCH per 200 records); per-record
        failures come back in the Outcome. Raises DeliveryError subclasses."""
        return self._destination.apply(subjects)

    def push_fields(self, records: Sequence[DestinationRecord]) -> list[Outcome]:
        """Write mapped fields to the Contacts/Leads each subject already has (one lookup
        query per type for those without refs, one PATCH per 200); never creates one.
        Per-record failures come back in the Outcome; raises DeliveryError subclasses."""
        return self._records.push(records)

    def erase(self, people: Sequence[PersonAt]) -> list[ErasureReceipt]:
        """Delete each person's Contacts and Leads, the Individuals only they use and those
        Individuals' consent rows (with ``hard_delete``, purged from the Recycle Bin too),
        then read back. Per-person failures (a refused delete,
        a record still readable) come back in the receipt; raises DeliveryError
        subclasses when a whole call failed."""
        return self._eraser.erase(people)

    def export(self, people: Sequence[PersonAt]) -> list[ExportResult]:
        """Every field of each person's Contacts, Leads and their Individuals, as the org
        describes them. Raises DeliveryError subclasses when a whole call failed."""
        return self._exporter.export(people)

    def check(self) -> None:
        """Raise AuthError on rejected credentials, TransientError if unreachable or spent,
        Throttled (error_class ``api_reserve``) if what is left is down to the reserve
        privasync keeps, PermanentError if the org does not serve the configured API
        version or the user lacks a right a configured feature needs (error_class
        ``salesforce_permissions``, the message naming each right and its feature)."""
        try:
            self._client.check_version()  # with an allowance, /limits is read first
        except Throttled as exc:
            if exc.error_class != "api_reserve":
                raise
            raise self._held(exc.retry_after) from None
        _, remaining = self._client.daily_allocation()
        wait = self.allowance.wait() if self.allowance is not None else 0.0
        if remaining <= 0 or wait > 0:  # the rights cannot be read either
            raise self._held(wait)
        check_permissions(self._client, self._mapping, hard_delete=self._hard_delete)

    def _held(self, wait: float | None) -> TransientError:
        """The allocation used up, or down to the reserve privasync leaves to the org."""
        left = self.allowance.left() if self.allowance is not None else None
        if left is None or left.remaining <= 0 or self.allowance is None:
            return TransientError("limits: daily API requests used up",
                                  retry_after=EXHAUSTED_RETRY_AFTER,
                                  error_class="request_limit_exceeded")
        return Throttled(f"limits: {left.remaining:,} of the org's {left.limit:,} daily API "
                         f"requests left, within the {self.allowance.reserve:.0%} privasync "
                         "leaves to its other users: privasync's Salesforce calls wait",
                         retry_after=wait, error_class="api_reserve")
