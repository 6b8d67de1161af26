"""Art. 15/20 at Mailchimp: every field a person's members hold on the list.

Each member is read once, ``GET .../members/{hash}``, and returned whole: status,
address, every merge field (``merge_fields.FNAME``, nested ones like
``merge_fields.ADDRESS.city``), GDPR marketing permissions
(``marketing_permissions.<id>`` = enabled), tags (``tags.<id>`` = name), signup
and opt-in timestamps and IPs, language, and what Mailchimp derived about the
person (rating, open and click rates, location). Archived members are included:
archiving keeps their data. Empty values are left out: they hold nothing.

The answer is cut with ``exclude_fields`` rather than a ``fields`` list: naming
what to keep would silently drop any personal field Mailchimp adds or we forgot,
and an Art. 15 answer must be complete. What is excluded is the hypermedia
``_links`` (most of the body), the list id (already the record's name) and
``id``, the MD5 of the address: it is an unkeyed hash of personal data, so it
appears nowhere in the result, not even in ``record``.

Out of scope: the member's activity feed (opens, clicks, campaigns sent), notes
history and e-commerce orders, which are separate endpoints; each result's note
says so. A failure of any read raises for the whole call: reads can be repeated
without loss.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from connectors.mailchimp.client import MailchimpApi
from connectors.mailchimp.locate import member_hashes, no_identifier, require_list
from core.errors import TransientError
from core.model import ExportedField, ExportResult, PersonAt

EXPORT_BATCH = 50
EXCLUDED = ("_links", "id", "list_id")
NOTE_ABSENT = "not a member"
NOTE_SCOPE = "activity feed, notes history and e-commerce data not included"


class MailchimpExport:
    """Reads what one list holds about people."""

    def __init__(self, api: MailchimpApi, list_id: str) -> None:
        self._api = api
        self._list = list_id

    def export(self, people: Sequence[PersonAt]) -> list[ExportResult]:
        """One result per person, in order. Raises TransientError, PermanentError or
        AuthError when a read fails or the list does not exist."""
        require_list(self._api, self._list, "mailchimp export")
        return [self._export(person) for person in people]

    def _export(self, person: PersonAt) -> ExportResult:
        hashes = member_hashes(person)
        if not hashes:
            return ExportResult(person.subject_id, error=no_identifier(person.subject_id))
        members = [member for h in hashes if (member := self._read(h)) is not None]
        if not members:
            return ExportResult(person.subject_id, note=NOTE_ABSENT)
        fields = tuple(field for index, member in enumerate(members)
                       for field in member_fields(member, self._record(index)))
        return ExportResult(person.subject_id, fields=fields,
                            note=f"{len(members)} member(s); {NOTE_SCOPE}")

    def _record(self, index: int) -> str:
        """``member:<list id>``; a person's second member on the list ``member:<list id>#2``."""
        return f"member:{self._list}" + (f"#{index + 1}" if index else "")

    def _read(self, member_hash: str) -> Mapping[str, Any] | None:
        member = self._api.call("GET", f"/lists/{self._list}/members/{member_hash}"
                                f"?exclude_fields={','.join(EXCLUDED)}", "mailchimp read member",
                                missing_ok=True)
        if member is not None and not isinstance(member, dict):
            raise TransientError("mailchimp read member: answer is not an object",
                                 error_class="bad_response")
        return member


def member_fields(member: Mapping[str, Any], record: str) -> list[ExportedField]:
    """A member's JSON as flat fields: dotted paths for objects, ``<name>.<id>`` for lists."""
    fields: list[ExportedField] = []
    for key, value in member.items():
        if key in EXCLUDED:  # should Mailchimp send them anyway
            continue
        if key == "marketing_permissions":
            fields += _listed(record, key, value, "marketing_permission_id", "enabled")
        elif key == "tags":
            fields += _listed(record, key, value, "id", "name")
        else:
            fields += _flat(record, key, value)
    return fields


def _listed(record: str, name: str, value: Any, key: str, shown: str) -> list[ExportedField]:
    """A list of objects as ``name.<key>`` = the object's ``shown`` value."""
    items = value if isinstance(value, list) else []
    return [ExportedField(record, f"{name}.{item.get(key)}", _text(item.get(shown)))
            for item in items if isinstance(item, dict)]


def _flat(record: str, name: str, value: Any) -> Iterator[ExportedField]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _flat(record, f"{name}.{key}", inner)
    elif value not in (None, "", []):
        yield ExportedField(record, name, _text(value))


def _text(value: Any) -> str | None:
    """JSON scalars as text (``true``/``false`` for booleans); other lists as JSON."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)
