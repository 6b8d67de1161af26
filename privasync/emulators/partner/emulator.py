"""A partner (e.g. an external contact centre) that receives privasync's signed batches.

It checks signatures with its own code (``signature``), acknowledges a replayed
event id without applying it twice, and keeps the latest consent and field values
per subject, so tests can assert what the partner ended up holding. Erasure
requests are kept by request id; completing one removes everything held for the
subject and POSTs a signed acknowledgement to ``ack_url``: after ``ack_delay``
seconds (``auto_ack``), or when a test calls ``ack``, or never.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
import uuid
from datetime import datetime
from typing import Any

import requests

from privasync.emulators.http import Emulator, Request, Response
from privasync.emulators.partner import documents
from privasync.emulators.partner.signature import Refused, check, signed_headers


class PartnerEmulator(Emulator):
    """``POST {path}``: verify, dedupe by event id, apply, answer ``{received, count}``."""

    name = "partner"

    def __init__(self, secret: str = "partner-secret",  # noqa: S107 - a test secret
                 path: str = "/privasync/consent", *, ack_url: str | None = None,
                 auto_ack: bool = True, ack_delay: float = 0.2) -> None:
        super().__init__()
        self.secret = secret
        self.path = path
        self.ack_url = ack_url
        self.auto_ack = auto_ack
        self.ack_delay = ack_delay
        self._event_ids: list[str] = []
        self._subjects: dict[str, dict[str, Any]] = {}
        self._field_times: dict[tuple[str, str], datetime] = {}
        self._kinds: dict[str, str] = {}
        self._erasures: dict[str, dict[str, Any]] = {}
        self._timers: list[threading.Timer] = []
        self.route("POST", re.escape(path), self._receive)

    @property
    def received_event_ids(self) -> list[str]:
        with self.lock:
            return list(self._event_ids)

    @property
    def received_kinds(self) -> dict[str, str]:
        """Event id -> ``kind`` of each batch applied (``consent``, ``record``, ``erasure``)."""
        with self.lock:
            return dict(self._kinds)

    def state(self, subject_id: str) -> dict[str, Any] | None:
        """What the partner holds for a subject: ``email`` (if sent), ``consents``, ``fields``.

        ``consents`` maps ``"purpose/channel"`` to ``{"status", "occurred_at"}``;
        ``fields`` maps canonical field names to their latest value (a cleared one is absent).
        """
        with self.lock:
            held = self._subjects.get(subject_id)
            return copy.deepcopy(held) if held is not None else None

    def erasures_open(self) -> int:
        """Erasure requests received and not yet settled (completed or rejected)."""
        with self.lock:
            return sum(1 for e in self._erasures.values() if e["status"] == "pending")

    def erasure(self, request_id: str) -> dict[str, Any] | None:
        """An erasure request as received: ``subject_id``, ``emails``, ``status`` (``pending``,
        ``completed``, ``rejected``) and ``ack_status`` (the HTTP status our ack got, or the
        name of the error that stopped it)."""
        with self.lock:
            held = self._erasures.get(request_id)
            return copy.deepcopy(held) if held is not None else None

    def _receive(self, request: Request, _match: re.Match[str]) -> Response:
        try:
            event_id = check(self.secret, request.headers, request.body, time.time())
        except Refused as exc:
            return Response(401, {"error": str(exc)})
        try:
            _, kind, sent_at, entries = documents.batch(json.loads(request.body))
            consents = [documents.consent_update(e) for e in entries] if kind == "consent" else []
            records = [documents.record_update(e) for e in entries] if kind == "record" else []
            erasures = [documents.erasure_request(e) for e in entries] if kind == "erasure" else []
        except (AttributeError, KeyError, TypeError, ValueError):
            return Response(400, {"error": "body does not follow the update schema"})
        with self.lock:
            if event_id in self._event_ids:
                return Response(200, {"received": event_id, "duplicate": True})
            self._event_ids.append(event_id)
            self._kinds[event_id] = kind
            for subject_id, email, held in consents:
                self._store(subject_id, email, held)
            for subject_id, email, fields in records:
                self._store_fields(subject_id, email, fields, sent_at)
            for request_id, subject_id, emails in erasures:
                self._take_erasure(request_id, subject_id, emails)
        return Response(200, {"received": event_id,
                              "count": len(consents) + len(records) + len(erasures)})

    def _take_erasure(self, request_id: str, subject_id: str, emails: tuple[str, ...]) -> None:
        """Keep a new request (a repeated one is the same request) and schedule its ack."""
        if request_id in self._erasures:
            return
        self._erasures[request_id] = {"subject_id": subject_id, "emails": list(emails),
                                      "status": "pending", "ack_status": None}
        if self.auto_ack:
            timer = threading.Timer(self.ack_delay, self._auto_ack, args=(request_id,))
            timer.daemon = True
            self._timers = [t for t in self._timers if t.is_alive()] + [timer]
            timer.start()

    def _auto_ack(self, request_id: str) -> None:
        """The timer's ack; a failure is recorded on the request (``ack_status``)."""
        try:
            self.ack(request_id)
        except (requests.RequestException, RuntimeError) as exc:
            with self.lock:
                self._erasures[request_id]["ack_status"] = type(exc).__name__

    def ack(self, request_id: str, status: str = "completed",
            detail: str = "erased from every system we hold") -> int:
        """Settle a request (``completed`` erases the subject's data) and POST the signed ack.

        Returns the HTTP status the ack got. Raises RuntimeError without an ``ack_url`` or
        for an unknown request, requests.RequestException if the ack could not be sent.
        """
        with self.lock:
            url, held = self.ack_url, self._erasures.get(request_id)
            if url is None or held is None:
                raise RuntimeError("no ack_url set" if url is None else "unknown request id")
            held["status"] = status
            if status == "completed":
                self._forget(held["subject_id"])
        event_id = str(uuid.uuid4())
        body = json.dumps({"event_id": event_id, "request_id": request_id, "status": status,
                           "detail": detail}).encode()
        response = requests.post(url, data=body, timeout=10,
                                 headers=signed_headers(self.secret, event_id, body, time.time()))
        with self.lock:
            held["ack_status"] = response.status_code
        return response.status_code

    def _forget(self, subject_id: str) -> None:
        self._subjects.pop(subject_id, None)
        for key in [k for k in self._field_times if k[0] == subject_id]:
            del self._field_times[key]

    def stop(self) -> None:
        """Cancel acks not yet sent, then stop serving."""
        with self.lock:
            timers, self._timers = self._timers, []
        for timer in timers:
            timer.cancel()
        super().stop()

    def _held(self, subject_id: str, email: str | None) -> dict[str, Any]:
        held = self._subjects.setdefault(subject_id, {"consents": {}, "fields": {}})
        if email is not None:
            held["email"] = email
        return held

    def _store(self, subject_id: str, email: str | None,
               consents: dict[str, dict[str, str]]) -> None:
        held = self._held(subject_id, email)
        for key, consent in consents.items():
            current = held["consents"].get(key)
            if current is None or documents.when(consent) >= documents.when(current):
                held["consents"][key] = consent

    def _store_fields(self, subject_id: str, email: str | None,
                      fields: dict[str, str | None], sent_at: datetime) -> None:
        """Keep each field's value from the latest batch; an older one arriving late loses."""
        held = self._held(subject_id, email)
        for name, value in fields.items():
            before = self._field_times.get((subject_id, name))
            if before is not None and sent_at < before:
                continue
            self._field_times[(subject_id, name)] = sent_at
            if value is None:
                held["fields"].pop(name, None)
            else:
                held["fields"][name] = value
