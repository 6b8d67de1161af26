"""Erasure at an OpenDSR processor (Art. 28, 17(2)): a request per person, a signed receipt.

OpenDSR v2.0 (``opengdpr/OpenDSR`` specification.md) takes one request per data subject
at ``{base}/v2/requests`` (§7), under a ``subject_request_id`` the controller chooses:
ours, so the processor's callback names the request it settles. Its 201 answer is signed
with the pinned certificate and is the receipt that it has the request; the erasure is
done when its signed ``completed`` callback arrives. A resend after a lost answer meets a
400 for the known id, so we read the request's status instead: asking twice is harmless.
A request still pending can be withdrawn with ``DELETE /requests/{id}`` (§9). Only the
identifiers the agreement declares leave: the addresses, or else our subject id as
``controller_customer_id``.

§10.1: a processor that serves only OpenGDPR 1.0's names is spoken to in them. Which one a
processor is comes from its discovery (§6), read once: ``/v2/discovery`` first, then
``/v1/discovery`` if that is not there; the 1.0 requests go to ``/v1/opengdpr_requests``,
without ``regulation`` (2.0 added it).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from connectors.partner.destination import http_endpoint
from connectors.partner.opendsr_callbacks import (
    STATUSES,
    is_request_id,
    parse_callback,
    rfc3339,
)
from connectors.partner.opendsr_discovery import gaps
from connectors.partner.opendsr_signing import (
    OPENDSR,
    OPENGDPR,
    Dialect,
    certificate_problems,
    load_certificate,
    verify_signed,
)
from connectors.transport import (
    PLAIN,
    ErrorTable,
    TimeoutSession,
    error_for_status,
    json_answer,
    send,
)
from core.errors import AuthError, ConfigError, PermanentError, Unauthenticated
from core.mappings import Partner
from core.model import ErasureReceipt, ErasureStatus, PersonAt, RequestAcknowledged

log = logging.getLogger(__name__)

API_VERSION = OPENDSR.api_version
# The published certificate may live on a host that is no party to the agreement: its
# answer goes by status alone.
_CERTIFICATE_HOST = ErrorTable(retry_after_header=False)
REQUEST_TYPES = ("erasure",)  # what privasync sends a processor (no access or portability)


class OpenDsrConnector:
    """An ``ErasureDestination`` for a processor speaking OpenDSR v2."""

    def __init__(self, *, name: str, partner: Partner, url: str, callback_url: str,
                 certificate_pem: str, api_secret: str | None = None,
                 timeout: float = 10.0) -> None:
        http_endpoint(url, f"partner {name}: url")
        http_endpoint(callback_url, f"partner {name}: callback url")
        if not partner.controller_id:
            raise ConfigError(f"partner {name}: OpenDSR needs controller_id")
        self._name = name
        self._partner = partner
        self._controller_id = partner.controller_id
        self._url = url.rstrip("/")
        self._dialect: Dialect | None = None  # learnt from discovery on first use
        self._callback_url = callback_url
        self._certificate = load_certificate(certificate_pem)
        self._timeout = timeout
        self._session = TimeoutSession(timeout)
        self._anonymous = TimeoutSession(timeout)  # no credentials: another host may serve it
        if api_secret:
            key, colon, secret = api_secret.partition(":")
            if not colon or not key:
                raise ConfigError(f"partner {name}: API credentials must read key:secret")
            self._session.auth = (key, secret)

    @property
    def name(self) -> str:
        return f"partner:{self._name}"

    @property
    def erase_batch_size(self) -> int:
        return 20

    def _identity_types(self) -> tuple[tuple[str, str], ...]:
        """The (identity_type, identity_format) pairs we may send (§5)."""
        if "email" in self._partner.identifiers:
            return (("email", "raw"), ("controller_customer_id", "raw"))
        return (("controller_customer_id", "raw"),)

    def _identities(self, person: PersonAt) -> list[dict[str, str]]:
        # privasync sends an OpenDSR processor nothing but erasure requests: what it holds
        # came from us by another way, so privasync cannot know which address it was given
        # (unlike a privasync-protocol partner, asked only for the addresses its updates
        # carried). The agreement decides: ``identifiers: [email]`` in partners.yaml declares
        # that the processor holds people by address, and an address left out could leave a
        # copy behind (Art. 17(2)), so every address we know goes; without it, only our id.
        if "email" in self._partner.identifiers and person.emails:
            return [{"identity_type": "email", "identity_format": "raw", "identity_value": e}
                    for e in person.emails]
        return [{"identity_type": "controller_customer_id", "identity_format": "raw",
                 "identity_value": person.subject_id}]

    def request_payload(self, person: PersonAt, submitted_at: datetime,
                        dialect: Dialect = OPENDSR) -> bytes:
        """The exact bytes POSTed to ask for one person's erasure (§7.1.1)."""
        document: dict[str, object] = {
            "subject_request_id": person.request_id, "subject_request_type": "erasure",
            "api_version": dialect.api_version,
            "submitted_time": submitted_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "subject_identities": self._identities(person),
            "status_callback_urls": [self._callback_url]}
        if dialect is OPENDSR:
            # ASSUMPTION: GDPR is the regulation privasync serves; CCPA requests are not made.
            document["regulation"] = "gdpr"
        return json.dumps(document, separators=(",", ":"), sort_keys=True).encode("utf-8")

    def erase(self, people: Sequence[PersonAt]) -> list[ErasureReceipt]:
        """Ask for each person's erasure; each receipt AWAITS the processor's callback.

        A person the processor refuses gets its receipt's ``error`` (PermanentError).
        Raises TransientError (429, 5xx, network) or AuthError (401/403, or an answer
        whose signature does not verify) for the whole call; resending is harmless.
        """
        submitted_at = datetime.now(UTC)
        receipts: list[ErasureReceipt] = []
        for person in people:
            try:
                receipts.append(self._erase_one(person, submitted_at))
            except AuthError:
                raise
            except PermanentError as exc:
                receipts.append(ErasureReceipt(subject_id=person.subject_id, error=exc))
        log.info("processor asked to erase", extra={
            "destination": self.name, "people": len(people),
            "refused": sum(1 for r in receipts if r.error is not None)})
        return receipts

    def _erase_one(self, person: PersonAt, submitted_at: datetime) -> ErasureReceipt:
        what = f"{self.name} erasure request"
        if not is_request_id(person.request_id):
            raise PermanentError(f"{what}: the request id is not a lowercase UUID v4, as "
                                 "OpenDSR requires", error_class="invalid_request_id")
        dialect = self._wire()
        response = self._call("POST", dialect.requests_path, what, {200, 201, 202, 400, 409},
                              self.request_payload(person, submitted_at, dialect))
        if response.status_code in (400, 409):
            known = self._call("GET", f"{dialect.requests_path}/{person.request_id}",
                               f"{self.name} status", {200, 404})
            if known.status_code == 404:
                raise error_for_status(response.status_code, what)
            return self._receipt(person, known, "asked before")
        return self._receipt(person, response, "asked")

    def _receipt(self, person: PersonAt, response: requests.Response,
                 asked: str) -> ErasureReceipt:
        """Check the signed answer is about this request and for us; note its due time."""
        answer = self._answer_about(person.request_id, response)
        expected = rfc3339(answer.get("expected_completion_time"))
        due = (f"completion expected by {expected.isoformat()}" if expected
               else "no expected completion time given")
        status = answer.get("request_status")
        state = f" ({status})" if status in STATUSES else ""
        return ErasureReceipt(subject_id=person.subject_id, status=ErasureStatus.AWAITING_ACK,
                              vendor_status=response.status_code,
                              vendor_request_id=person.request_id,
                              verified=f"{asked}{state}; signed receipt verified; {due}")

    def _answer_about(self, request_id: str, response: requests.Response) -> dict[str, Any]:
        """A signed answer's document, if it names this request and this controller."""
        answer = self._signed(response)
        if answer.get("subject_request_id") != request_id:
            raise PermanentError(f"{self.name}: the answer names another subject_request_id",
                                 error_class="mismatch")
        if "controller_id" in answer and str(answer["controller_id"]) != self._controller_id:
            raise AuthError(f"{self.name}: the answer names another controller_id",
                            error_class="controller_id")
        return answer

    def cancel(self, request_id: str) -> bool:
        """Withdraw a request sent earlier (§9: ``DELETE /requests/{id}``, answered 202).

        True once the processor accepted (its ``cancelled`` callback settles the request);
        False if it holds no such request (404, an assumption: the spec names no status for
        it). Raises PermanentError (error_class ``not_cancellable``) when it refuses because
        the request is no longer pending (§9 allows cancelling only then), AuthError (401,
        403, a signature that does not verify), TransientError.
        """
        what = f"{self.name} cancellation"
        if not is_request_id(request_id):
            raise PermanentError(f"{what}: the request id is not a lowercase UUID v4",
                                 error_class="invalid_request_id")
        path = f"{self._wire().requests_path}/{request_id}"
        response = self._call("DELETE", path, what, {200, 202, 204, 400, 404, 409})
        if response.status_code == 404:
            return False
        if response.status_code in (400, 409):
            known = self._call("GET", path, f"{self.name} status", {200, 404})
            status = (self._answer_about(request_id, known).get("request_status")
                      if known.status_code == 200 else None)
            if status == "cancelled":
                return True
            state = status if status in STATUSES else "not pending"
            raise PermanentError(f"{what}: refused, the request is {state}",
                                 error_class="not_cancellable")
        self._answer_about(request_id, response)
        log.info("processor asked to cancel", extra={"destination": self.name})
        return True

    def _signed(self, response: requests.Response) -> dict[str, Any]:
        try:
            verify_signed(response.headers, response.content, self._certificate,
                          datetime.now(UTC))
        except Unauthenticated as exc:
            raise AuthError(f"{self.name}: answer refused: {exc}",
                            error_class="signature") from exc
        try:
            answer = json.loads(response.content.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PermanentError(f"{self.name}: the answer is not JSON",
                                 error_class="bad_answer") from exc
        if not isinstance(answer, dict):
            raise PermanentError(f"{self.name}: the answer is not a JSON object",
                                 error_class="bad_answer")
        return answer

    def _call(self, method: str, path: str, what: str, accept: Collection[int],
              body: bytes | None = None, versioned: bool = True) -> requests.Response:
        if versioned:
            path = self._wire().version_path + path
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        return send(self._session, method, self._url + path, what=what, errors=PLAIN,
                    accept=accept, data=body, headers=headers)

    def verify_callback(self, headers: Mapping[str, str], body: bytes, now: datetime) -> None:
        """Authenticate a status callback against the pinned certificate (Unauthenticated)."""
        verify_signed(headers, body, self._certificate, now)

    def parse_callback(self, body: bytes, received_at: datetime) -> list[RequestAcknowledged]:
        """A status callback, verified by ``verify_callback``, as its acknowledgement.

        [] while the request is pending or in progress. Raises BadInput.
        """
        return parse_callback(self.name, self._controller_id, self._callback_url, body,
                              received_at)

    def _wire(self) -> Dialect:
        """The names this processor speaks (§10.1), from where its discovery answers."""
        if self._dialect is None:
            self._dialect, _ = self._discover()
        return self._dialect

    def _discover(self) -> tuple[Dialect, Any]:
        """(dialect, discovery document): ``/v2/discovery``, else OpenGDPR's ``/v1/discovery``.

        Raises TransientError (unreachable), AuthError, PermanentError (no discovery, or
        not JSON)."""
        what = f"{self.name} discovery"
        for dialect in (OPENDSR, OPENGDPR):
            response = self._call("GET", f"{dialect.version_path}/discovery", what, {200, 404},
                                  versioned=False)
            if response.status_code == 200:
                return dialect, json_answer(response, PermanentError(
                    f"{what}: not JSON", error_class="bad_answer"))
        raise PermanentError(f"{what}: neither /v2/discovery nor OpenGDPR's /v1/discovery is "
                             "served", error_class="opendsr_discovery")

    def check(self) -> None:
        """Is this processor usable: discovery reachable (§6), its api_version our major
        one, erasure and the identities we send supported (§6.3), the pinned certificate
        CA-issued, valid and able to sign (§4.1, §4.2), and the one published.

        Names everything missing at once. Raises TransientError (unreachable), AuthError, or
        PermanentError (error_class ``opendsr_discovery`` or ``opendsr_certificate``).
        """
        dialect, discovery = self._discover()
        self._dialect = dialect
        missing = gaps(discovery, dialect, REQUEST_TYPES, self._identity_types())
        problems = certificate_problems(self._certificate, datetime.now(UTC))
        location = discovery.get("processor_certificate") if isinstance(discovery, dict) else None
        if isinstance(location, str) and location.startswith(("https://", "http://")) and \
                self._published(location) != self._fingerprint(self._certificate):
            problems.append("the published certificate is not the pinned one")
        said = [f"discovery lacks {'; '.join(missing)}"] if missing else []
        said += [f"certificate: {'; '.join(problems)}"] if problems else []
        if said:
            raise PermanentError(f"{self.name} OpenDSR: {'. '.join(said)}", error_class=(
                "opendsr_discovery" if missing else "opendsr_certificate"))

    def _published(self, location: str) -> bytes:
        """The fingerprint of the certificate at ``location``, fetched without our credentials
        (it may live on another host)."""
        what = f"{self.name} certificate"
        response = send(self._anonymous, "GET", location, what=what, errors=_CERTIFICATE_HOST,
                        accept=(200,), blips=False)
        try:
            published = x509.load_pem_x509_certificate(response.content)
        except ValueError as exc:
            raise PermanentError(f"{what}: not a PEM certificate",
                                 error_class="certificate") from exc
        return self._fingerprint(published)

    @staticmethod
    def _fingerprint(certificate: x509.Certificate) -> bytes:
        return certificate.fingerprint(hashes.SHA256())
