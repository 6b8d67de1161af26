"""A partner (e.g. an external contact centre) that receives signed consent updates.

It checks signatures exactly as a partner would with ``connectors.partner.verify``,
acknowledges a replayed event id without applying it twice, and keeps the latest
consent per subject so tests can assert what the partner ended up holding.
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
        self.route("POST", re.escape(path), self._receive)

    @property
    def received_event_ids(self) -> list[str]:
        with self.lock:
            return list(self._event_ids)

    def state(self, subject_id: str) -> dict[str, Any] | None:
        """What the partner holds for a subject: ``email`` (if sent) and ``consents``.

        ``consents`` maps ``"purpose/channel"`` to ``{"status", "occurred_at"}``.
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
            updates = [_normalise(entry) for entry in json.loads(request.body)["subjects"]]
        except (KeyError, TypeError, ValueError):
            return Response(400, {"error": "body does not follow the consent update schema"})
        with self.lock:
            if event_id in self._event_ids:
                return Response(200, {"received": event_id, "duplicate": True})
            self._event_ids.append(event_id)
            for subject_id, email, consents in updates:
                self._store(subject_id, email, consents)
        return Response(200, {"received": event_id, "count": len(updates)})

    def _store(self, subject_id: str, email: str | None,
               consents: dict[str, dict[str, str]]) -> None:
        held = self._subjects.setdefault(subject_id, {"consents": {}})
        if email is not None:
            held["email"] = email
        for key, consent in consents.items():
            current = held["consents"].get(key)
            if current is None or _when(consent) >= _when(current):
                held["consents"][key] = consent


_Update = tuple[str, "str | None", dict[str, dict[str, str]]]


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
