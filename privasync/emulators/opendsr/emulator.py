"""An OpenDSR v2 processor: discovery, requests, their status and cancellation, signed callbacks.

Written from the OpenDSR text alone (no privasync code; the shapes are
``privasync.emulators.contracts.opendsr``): every request body is validated against its contract and
a refusal is the §7.5 400 with the §7.6 error object. It answers 201 signed with its
certificate, and POSTs a signed callback to every ``status_callback_urls`` entry on each
status change (§8.5): when a test calls ``set_status``/``complete``, when a request is
cancelled, or ``complete_after`` seconds after the request. Each callback is tried up to
three times; every attempt's outcome is kept on the request.

§10.1: it also honours the OpenGDPR 1.0 names (``/v1/opengdpr_requests``,
``X-OpenGDPR-*`` headers); ``legacy_only=True`` makes it a processor that speaks nothing else.
"""

from __future__ import annotations

import base64
import json
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from privasync.emulators.contracts import opendsr as spec
from privasync.emulators.http import Emulator, Request, Response
from privasync.emulators.opendsr.authority import TestAuthority, pem, sign
from privasync.emulators.opendsr.callbacks import call_back

API_VERSION = spec.OPENDSR.api_version
IDENTITIES = ("email", "controller_customer_id")
STATUSES: tuple[str, ...] = ("pending", "in_progress", "completed", "cancelled")
_ID = r"(?P<id>[^/]+)"


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Answer:
    """One answer as served, for the contract tests to hold against the contract."""

    method: str
    path: str
    status: int
    headers: dict[str, str]
    body: bytes


class OpenDsrEmulator(Emulator):
    """A processor at ``{url}/v2`` (and ``{url}/v1``, OpenGDPR's names); its signing
    certificate is ``certificate_pem``, its key ``key_type`` (rsa, p256 or p384)."""

    name = "opendsr"

    def __init__(self, domain: str = "opendsr.processor.test",
                 controller_id: str = "privasync-test", *,
                 credentials: tuple[str, str] | None = None,
                 complete_after: float | None = None, completion_days: int = 30,
                 valid_from: datetime | None = None, valid_until: datetime | None = None,
                 key_type: str = "rsa", legacy_only: bool = False,
                 request_types: tuple[str, ...] = ("erasure",),
                 identities: tuple[str, ...] = IDENTITIES,
                 api_version: str | None = None) -> None:
        super().__init__()
        now = datetime.now(UTC)
        self.domain, self.controller_id = domain, controller_id
        self.credentials, self.complete_after = credentials, complete_after
        self.completion_days = completion_days
        self.request_types, self.identities = request_types, identities
        self.authority = TestAuthority()
        self._key, certificate = self.authority.issue(
            domain, valid_from or now - timedelta(days=1),
            valid_until or now + timedelta(days=90), key_type)
        self.certificate_pem = pem(certificate)
        self.ca_certificate_pem = pem(self.authority.certificate)
        self._requests: dict[str, dict[str, Any]] = {}
        self._timers: list[threading.Timer] = []
        self.answers: deque[Answer] = deque(maxlen=1_000)
        self.dialects = (spec.OPENGDPR,) if legacy_only else (spec.OPENDSR, spec.OPENGDPR)
        self._api_version = api_version  # to publish another version in discovery (tests)
        for dialect in self.dialects:
            self._serve_dialect(dialect)

    def _serve_dialect(self, d: spec.Dialect) -> None:
        v, requests_at = d.version_path, d.version_path + d.requests_path
        self.route("GET", f"{v}/discovery/?", lambda r, m: self._discovery(d))
        self.route("GET", f"{v}/cert.pem", lambda r, m: Response(
            200, self.certificate_pem, content_type="application/x-pem-file"))
        self.route("POST", f"{requests_at}/?", lambda r, m: self._create(d, r))
        self.route("GET", f"{requests_at}/{_ID}", lambda r, m: self._status(d, m["id"]))
        self.route("GET", f"{v}/status/{_ID}", lambda r, m: self._status(d, m["id"]))  # §3.1
        self.route("DELETE", f"{requests_at}/{_ID}", lambda r, m: self._cancel(d, m["id"]))

    # -- what every answer shares -------------------------------------------------------
    def error(self, status: int, message: str,
              details: list[dict[str, str]] | None = None) -> Response:
        """§7.5-§7.7: the error object, with §7.7's caching headers; never a value sent."""
        error: dict[str, Any] = {"code": status, "message": message}
        if details:
            error["errors"] = details
        return Response(status, {"error": error}, {"Cache-Control": "no store",
                                                   "Pragma": "no cache"},
                        content_type="application/json;charset=UTF-8")

    def authorize(self, request: Request) -> Response | None:
        """HTTP Basic on the request endpoints when ``credentials`` are set (as mParticle;
        §4.3 leaves API authentication to the processor)."""
        guarded = tuple(d.version_path + p for d in self.dialects
                        for p in (d.requests_path, "/status"))
        if self.credentials is None or not request.path.startswith(guarded):
            return None
        token = base64.b64encode(":".join(self.credentials).encode()).decode()
        if request.headers.get("authorization") != f"Basic {token}":
            return self.error(401, "invalid credentials")
        return None

    def dispatch(self, request: Request) -> Response:
        response = super().dispatch(request)
        with self.lock:
            self.answers.append(Answer(request.method, request.path, response.status,
                                       dict(response.headers), response.encode()))
        return response

    def signed(self, status: int, document: dict[str, Any],
               dialect: spec.Dialect = spec.OPENDSR) -> Response:
        body = json.dumps(document).encode()
        return Response(status, body, {dialect.domain_header: self.domain,
                                       dialect.signature_header: sign(self._key, body)})

    def subject_request(self, request_id: str) -> dict[str, Any] | None:
        """A request as held: ``document`` (the body received), ``status``, ``callbacks``
        (``(status sent, URL, HTTP status or error name)`` per attempt)."""
        with self.lock:
            held = self._requests.get(request_id)
            if held is None:
                return None
            copied: dict[str, Any] = json.loads(json.dumps(
                {k: v for k, v in held.items() if k != "dialect"}))
            return copied

    # -- the endpoints ------------------------------------------------------------------
    def _discovery(self, d: spec.Dialect) -> Response:
        return Response(200, spec.Discovery.model_validate({
            "api_version": self._api_version or d.api_version,
            "supported_subject_request_types": list(self.request_types),
            "supported_identities": [{"identity_type": t, "identity_format": "raw"}
                                     for t in self.identities],
            "processor_certificate": f"{self.url}{d.version_path}/cert.pem"}).model_dump())

    def _read(self, d: spec.Dialect, request: Request) -> Response | dict[str, Any]:
        """The request's document, or the 400 refusing it (§7.5)."""
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return self.error(400, "Content-Type must be application/json")
        model = spec.SubjectRequest if d is spec.OPENDSR else spec.LegacySubjectRequest
        try:
            document = model.model_validate_json(request.body)
        except ValidationError as exc:
            details = [{"domain": "Validation", "reason": e["type"], "message":
                        f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"}
                       for e in exc.errors(include_input=False, include_url=False)]
            return self.error(400, details[0]["message"], details)
        # Below: what this processor supports, as its discovery says (§6.3).
        if document.subject_request_type not in self.request_types:
            return self.error(400, "subject_request_type not supported (see /discovery)")
        major = d.api_version.split(".")[0] + "."
        if document.api_version is not None and not document.api_version.startswith(major):
            return self.error(400, f"api_version must be {major}x on this endpoint")
        if not document.identities_present() or not all(
                i.identity_type in self.identities and i.identity_format == "raw"
                for i in document.subject_identities or ()):
            return self.error(400, "subject_identities must list supported identities, raw")
        return document.model_dump(exclude_none=True)

    def _create(self, d: spec.Dialect, request: Request) -> Response:
        document = self._read(d, request)
        if isinstance(document, Response):
            return document
        request_id, now = document["subject_request_id"], datetime.now(UTC)
        with self.lock:
            if request_id in self._requests:
                # ASSUMPTION (spec silent on a repeated id): an error, hence 400 (§7.5).
                return self.error(400, "subject_request_id already exists")
            expected = _stamp(now + timedelta(days=self.completion_days))
            self._requests[request_id] = {
                "document": document, "status": "pending", "callbacks": [],
                "expected": expected, "dialect": d}
            if self.complete_after is not None:
                self._later(self.complete_after, lambda: self.complete(request_id))
        return self.signed(201, spec.Created(
            controller_id=self.controller_id, subject_request_id=request_id,
            received_time=_stamp(now), expected_completion_time=expected,
            encoded_request=base64.b64encode(request.body).decode()).model_dump(
                exclude_none=True), d)

    def _status(self, d: spec.Dialect, request_id: str) -> Response:
        with self.lock:
            held = self._requests.get(request_id)
            if held is None:
                return self.error(spec.UNKNOWN_STATUS, "unknown subject_request_id")
            status, expected = held["status"], held["expected"]
        return self.signed(200, spec.Status(
            controller_id=self.controller_id, subject_request_id=request_id,
            request_status=status, expected_completion_time=expected,  # a held status
            api_version=d.api_version).model_dump(exclude_none=True), d)

    def _cancel(self, d: spec.Dialect, request_id: str) -> Response:
        """§9: 202 while pending (and the callbacks told, §8.5); see the contract for the
        rest."""
        now = datetime.now(UTC)
        with self.lock:
            held = self._requests.get(request_id)
            if held is None:
                return self.error(spec.UNKNOWN_STATUS, "unknown subject_request_id")
            status = held["status"]
            if status not in (*spec.CANCELLABLE, "cancelled"):
                return self.error(spec.ERROR_STATUS, f"the request is {status}: only a "
                                  "pending request may be cancelled")
            if status != "cancelled":
                self._later(0, lambda: self.set_status(request_id, "cancelled"))
                held["status"] = "cancelled"
        return self.signed(spec.CANCELLED_STATUS, spec.Cancelled(
            controller_id=self.controller_id, subject_request_id=request_id,
            received_time=_stamp(now), api_version=d.api_version).model_dump(
                exclude_none=True), d)

    # -- the processor's own moves --------------------------------------------------------
    def complete(self, request_id: str) -> list[int | str]:
        return self.set_status(request_id, "completed")

    def set_status(self, request_id: str, status: str) -> list[int | str]:
        """Move a request to ``status`` and call back every URL it gave; the last outcome
        per URL (HTTP status, or the error's name). KeyError for an unknown request."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        with self.lock:
            held = self._requests[request_id]
            held["status"] = status
            urls = list(held["document"].get("status_callback_urls", []))
            expected, dialect = held["expected"], held["dialect"]
        outcomes = []
        for url in urls:
            body = json.dumps(spec.Callback.model_validate({
                "controller_id": self.controller_id, "status_callback_url": url,
                "subject_request_id": request_id, "request_status": status,
                "expected_completion_time": expected}).model_dump(exclude_none=True)).encode()
            headers = {"Content-Type": "application/json", dialect.domain_header: self.domain,
                       dialect.signature_header: sign(self._key, body)}
            outcomes.append(call_back(url, body, headers, self._noter(request_id, status, url)))
        return outcomes

    def _noter(self, request_id: str, status: str, url: str) -> Callable[[int | str], None]:
        def note(outcome: int | str) -> None:
            with self.lock:
                self._requests[request_id]["callbacks"].append([status, url, outcome])
        return note

    def _later(self, seconds: float, action: Callable[[], object]) -> None:
        timer = threading.Timer(seconds, action)
        timer.daemon = True
        with self.lock:
            self._timers = [t for t in self._timers if t.is_alive()] + [timer]
        timer.start()

    def stop(self) -> None:
        """Cancel completions not yet due, then stop serving."""
        with self.lock:
            timers, self._timers = self._timers, []
        for timer in timers:
            timer.cancel()
        super().stop()
