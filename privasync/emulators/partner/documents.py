"""The partner's reading of privasync's JSON bodies: each kind of batch, checked strictly.

Every function raises KeyError, TypeError or ValueError on a malformed entry, which
the emulator answers with a 400, as a partner validating its input would.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

Update = tuple[str, "str | None", dict[str, dict[str, str]]]
RecordUpdate = tuple[str, "str | None", dict[str, "str | None"]]
Erasure = tuple[str, str, tuple[str, ...]]
KINDS = ("consent", "record", "erasure")


def aware(stamp: str) -> datetime:
    when = datetime.fromisoformat(stamp)
    if when.tzinfo is None:
        raise ValueError("timestamp has no timezone")
    return when


def when(consent: dict[str, str]) -> datetime:
    return datetime.fromisoformat(consent["occurred_at"])


def _email(entry: dict[str, Any]) -> str | None:
    email = entry.get("email")
    return str(email) if email is not None else None


def consent_update(entry: dict[str, Any]) -> Update:
    """One subject of a consent update."""
    consents: dict[str, dict[str, str]] = {}
    for c in entry["consents"]:
        consent = {"status": str(c["status"]), "occurred_at": str(c["occurred_at"])}
        aware(consent["occurred_at"])
        consents[f"{c['purpose']}/{c['channel']}"] = consent
    return str(entry["subject_id"]), _email(entry), consents


def record_update(entry: dict[str, Any]) -> RecordUpdate:
    """One subject of a record update."""
    raw = entry["fields"]
    if not isinstance(raw, dict):
        raise TypeError("fields must be an object")
    fields = {str(k): None if v is None else str(v) for k, v in raw.items()}
    return str(entry["subject_id"]), _email(entry), fields


def erasure_request(entry: dict[str, Any]) -> Erasure:
    """One request of an erasure batch: request id, subject id, addresses (if sent)."""
    request_id, subject_id = entry["request_id"], entry["subject_id"]
    emails = entry.get("emails", [])
    if not isinstance(request_id, str) or not request_id or not isinstance(subject_id, str):
        raise TypeError("request_id and subject_id must be strings")
    if not isinstance(emails, list) or not all(isinstance(e, str) for e in emails):
        raise TypeError("emails must be a list of strings")
    if set(entry) - {"request_id", "subject_id", "emails"}:
        raise ValueError("unknown field in an erasure request")
    return request_id, subject_id, tuple(emails)


def batch(document: Any) -> tuple[str, str, datetime, list[Any]]:
    """Event id, kind, sent_at and entries of a batch (no ``kind`` is a consent update)."""
    if not isinstance(document, dict):
        raise TypeError("body must be an object")
    kind = document.get("kind", "consent")
    if kind not in KINDS:
        raise ValueError("unknown kind")
    entries = document["requests" if kind == "erasure" else "subjects"]
    if not isinstance(entries, list):
        raise TypeError("entries must be a list")
    return str(document["event_id"]), kind, aware(str(document["sent_at"])), entries
