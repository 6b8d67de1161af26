"""A partner (e.g. an external contact centre) that receives signed consent and record updates.

It checks signatures exactly as a partner would with ``connectors.partner.verify``,
acknowledges a replayed event id without applying it twice, and keeps the latest
consent and the latest value of each field per subject, so tests can assert what
the partner ended up holding. A body without ``kind`` is a consent update.
"""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime
from typing import Any

from connectors.partner import verify
from core.errors import Unauthenticated
from emulators.http import Emulator, Request, Response


class PartnerEmulator(Emulator):
    """``POST {path}``: verify, dedupe by event id, store, answer ``{received, count}``."""

    name = "partner"

    def __init__(self, secret: str = "partner-secret",  # noqa: S107 - a test secret
                 path: str = "/privasync/consent") -> None:
        super().__init__()
        self.secret = secret
        self.path = path
        self._event_ids: list[str] = []
        self._subjects: dict[str, dict[str, Any]] = {}
        self._field_times: dict[tuple[str, str], datetime] = {}
        self._kinds: dict[str, str] = {}
        self.route("POST", re.escape(path), self._receive)

    @property
    def received_event_ids(self) -> list[str]:
        with self.lock:
            return list(self._event_ids)

    @property
    def received_kinds(self) -> dict[str, str]:
        """Event id -> ``kind`` of each batch applied (``consent`` or ``record``)."""
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

    def _receive(self, request: Request, _match: re.Match[str]) -> Response:
        try:
            event_id = verify(self.secret, request.headers, request.body, datetime.now(UTC))
        except Unauthenticated as exc:
            return Response(401, {"error": str(exc)})
        try:
            document = json.loads(request.body)
            kind, sent_at = document.get("kind", "consent"), _aware(str(document["sent_at"]))
            if kind not in ("consent", "record"):
                raise ValueError("unknown kind")
            entries = document["subjects"]
            consents = [_normalise(e) for e in entries] if kind == "consent" else []
            records = [_normalise_record(e) for e in entries] if kind == "record" else []
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
        return Response(200, {"received": event_id, "count": len(consents) + len(records)})

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
            if current is None or _when(consent) >= _when(current):
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


_Update = tuple[str, "str | None", dict[str, dict[str, str]]]
_RecordUpdate = tuple[str, "str | None", dict[str, "str | None"]]


def _aware(stamp: str) -> datetime:
    when = datetime.fromisoformat(stamp)
    if when.tzinfo is None:
        raise ValueError("timestamp has no timezone")
    return when


def _when(consent: dict[str, str]) -> datetime:
    return datetime.fromisoformat(consent["occurred_at"])


def _normalise(entry: dict[str, Any]) -> _Update:
    """One subject of an update; KeyError/TypeError/ValueError when it is malformed."""
    consents: dict[str, dict[str, str]] = {}
    for c in entry["consents"]:
        consent = {"status": str(c["status"]), "occurred_at": str(c["occurred_at"])}
        if _when(consent).tzinfo is None:
            raise ValueError("occurred_at has no timezone")
        consents[f"{c['purpose']}/{c['channel']}"] = consent
    email = entry.get("email")
    return str(entry["subject_id"]), str(email) if email is not None else None, consents


def _normalise_record(entry: dict[str, Any]) -> _RecordUpdate:
    """One subject of a record update; KeyError/TypeError/ValueError when it is malformed."""
    raw = entry["fields"]
    if not isinstance(raw, dict):
        raise TypeError("fields must be an object")
    fields = {str(k): None if v is None else str(v) for k, v in raw.items()}
    email = entry.get("email")
    return str(entry["subject_id"]), str(email) if email is not None else None, fields
