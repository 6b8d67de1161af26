"""An OpenDSR v2 processor: discovery, erasure requests, their status, signed callbacks.

Written from the OpenDSR text alone (no privasync code): it validates requests as
a processor would (a lowercase UUID v4 id, a known regulation, RFC 3339 times,
identities it supports), answers 201 signed with its certificate, refuses a
known id with 400, and POSTs a signed callback to every ``status_callback_urls``
entry on each status change: when a test calls ``set_status``/``complete``, or
``complete_after`` seconds after the request. Each callback is tried up to three
times; every attempt's outcome is kept on the request.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from emulators.http import Emulator, Request, Response
from emulators.opendsr.authority import TestAuthority, pem, sign

API_VERSION = "2.0"
IDENTITIES = ("email", "controller_customer_id")
STATUSES = ("pending", "in_progress", "completed", "cancelled")
_ID = r"(?P<id>[^/]+)"


def _aware(value: Any) -> bool:
    try:
        return isinstance(value, str) and datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _problem(document: Any) -> str | None:
    """What is wrong with a request body, as the processor's 400 says it; None if nothing."""
    if not isinstance(document, dict):
        return "body must be a JSON object"
    request_id = document.get("subject_request_id")
    if not isinstance(request_id, str) or not re.fullmatch(
            r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", request_id):
        return "subject_request_id must be a lowercase UUID v4"
    if document.get("regulation") not in ("gdpr", "ccpa"):
        return "regulation must be gdpr or ccpa"
    if document.get("subject_request_type") != "erasure":
        return "subject_request_type not supported (see /discovery)"
    if not _aware(document.get("submitted_time")):
        return "submitted_time must be an RFC 3339 time"
    if not str(document.get("api_version", API_VERSION)).startswith("2."):
        return "api_version must be 2.x on this endpoint"
    identities = document.get("subject_identities")
    if not isinstance(identities, list) or not identities or not all(
            isinstance(i, dict) and i.get("identity_type") in IDENTITIES
            and i.get("identity_format") == "raw" and isinstance(i.get("identity_value"), str)
            and i["identity_value"] for i in identities):
        return "subject_identities must list supported identities, raw"
    urls = document.get("status_callback_urls", [])
    if not isinstance(urls, list) or not all(
            isinstance(u, str) and u.startswith(("http://", "https://")) for u in urls):
        return "status_callback_urls must be a list of http(s) URLs"
    return None


class OpenDsrEmulator(Emulator):
    """A processor at ``{url}/v2``; its signing certificate is ``certificate_pem``."""

    name = "opendsr"

    def __init__(self, domain: str = "opendsr.processor.test",
                 controller_id: str = "privasync-test", *,
                 credentials: tuple[str, str] | None = None,
                 complete_after: float | None = None, completion_days: int = 30,
                 valid_from: datetime | None = None, valid_until: datetime | None = None) -> None:
        super().__init__()
        now = datetime.now(UTC)
        self.domain, self.controller_id = domain, controller_id
        self.credentials, self.complete_after = credentials, complete_after
        self.completion_days = completion_days
        self.authority = TestAuthority()
        self._key, certificate = self.authority.issue(
            domain, valid_from or now - timedelta(days=1), valid_until or now + timedelta(days=90))
        self.certificate_pem = pem(certificate)
        self.ca_certificate_pem = pem(self.authority.certificate)
        self._requests: dict[str, dict[str, Any]] = {}
        self._timers: list[threading.Timer] = []
        self.route("GET", "/v2/discovery/?", self._discovery)
        self.route("GET", "/v2/cert.pem", self._certificate)
        self.route("POST", "/v2/requests/?", self._create)
        self.route("GET", f"/v2/requests/{_ID}", self._status)
        self.route("GET", f"/v2/status/{_ID}", self._status)

    def error(self, status: int, message: str) -> Response:
        return Response(status, {"error": {"code": status, "message": message}})

    def authorize(self, request: Request) -> Response | None:
        """HTTP Basic on the request endpoints when ``credentials`` are set (as mParticle)."""
        if self.credentials is None or not request.path.startswith(("/v2/requests",
                                                                    "/v2/status")):
            return None
        token = base64.b64encode(":".join(self.credentials).encode()).decode()
        if request.headers.get("authorization") != f"Basic {token}":
            return self.error(401, "invalid credentials")
        return None

    def subject_request(self, request_id: str) -> dict[str, Any] | None:
        """A request as held: ``document`` (the body received), ``status``, ``callbacks``
        (``(status sent, URL, HTTP status or error name)`` per attempt)."""
        with self.lock:
            held = self._requests.get(request_id)
            return json.loads(json.dumps(held)) if held is not None else None

    def signed(self, status: int, document: dict[str, Any]) -> Response:
        body = json.dumps(document).encode()
        return Response(status, body, {"X-OpenDSR-Processor-Domain": self.domain,
                                       "X-OpenDSR-Signature": sign(self._key, body)})

    def _discovery(self, _request: Request, _match: re.Match[str]) -> Response:
        return Response(200, {
            "api_version": API_VERSION, "supported_subject_request_types": ["erasure"],
            "supported_identities": [{"identity_type": t, "identity_format": "raw"}
                                     for t in IDENTITIES],
            "processor_certificate": f"{self.url}/v2/cert.pem"})

    def _certificate(self, _request: Request, _match: re.Match[str]) -> Response:
        return Response(200, self.certificate_pem, content_type="application/x-pem-file")

    def _create(self, request: Request, _match: re.Match[str]) -> Response:
        try:
            document = json.loads(request.body)
        except ValueError:
            return self.error(400, "body is not JSON")
        problem = _problem(document)
        if problem is not None:
            return self.error(400, problem)
        request_id, now = document["subject_request_id"], datetime.now(UTC)
        with self.lock:
            if request_id in self._requests:
                return self.error(400, "subject_request_id already exists")
            self._requests[request_id] = {
                "document": document, "status": "pending", "callbacks": [],
                "expected": _stamp(now + timedelta(days=self.completion_days))}
            expected = self._requests[request_id]["expected"]
            if self.complete_after is not None:
                timer = threading.Timer(self.complete_after, self.complete, args=(request_id,))
                timer.daemon = True
                self._timers = [t for t in self._timers if t.is_alive()] + [timer]
                timer.start()
        return self.signed(201, {
            "controller_id": self.controller_id, "subject_request_id": request_id,
            "received_time": _stamp(now), "expected_completion_time": expected,
            "encoded_request": base64.b64encode(request.body).decode()})

    def _status(self, _request: Request, match: re.Match[str]) -> Response:
        with self.lock:
            held = self._requests.get(match["id"])
            if held is None:
                return self.error(404, "unknown subject_request_id")
            status, expected = held["status"], held["expected"]
        return self.signed(200, {
            "controller_id": self.controller_id, "subject_request_id": match["id"],
            "request_status": status, "expected_completion_time": expected,
            "api_version": API_VERSION, "results_url": None})

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
            expected = held["expected"]
        return [self._call_back(request_id, url, status, expected) for url in urls]

    def _call_back(self, request_id: str, url: str, status: str, expected: str) -> int | str:
        body = json.dumps({
            "controller_id": self.controller_id, "status_callback_url": url,
            "subject_request_id": request_id, "request_status": status,
            "expected_completion_time": expected, "api_version": API_VERSION}).encode()
        headers = {"Content-Type": "application/json", "X-OpenDSR-Processor-Domain": self.domain,
                   "X-OpenDSR-Signature": sign(self._key, body)}
        outcome: int | str = "not sent"
        for attempt in range(3):
            try:
                outcome = requests.post(url, data=body, headers=headers, timeout=10).status_code
            except requests.RequestException as exc:
                outcome = type(exc).__name__
            with self.lock:
                self._requests[request_id]["callbacks"].append([status, url, outcome])
            if isinstance(outcome, int) and outcome < 500:
                break
            time.sleep(0.05 * (attempt + 1))
        return outcome

    def stop(self) -> None:
        """Cancel completions not yet due, then stop serving."""
        with self.lock:
            timers, self._timers = self._timers, []
        for timer in timers:
            timer.cancel()
        super().stop()

