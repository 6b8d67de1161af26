"""The HubSpot emulator's records: contacts and subscription statuses, kept in step.

The contact and status methods expect ``self.lock`` held; the route mixins and
the ``ui_*`` helpers take it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from privasync.emulators.http import Request
from privasync.emulators.hubspot.common import (
    NOT_SPECIFIED,
    NOT_SUBSCRIBED,
    SUBSCRIBED,
    HubSpotError,
    StatusChange,
    _Contact,
    _Definition,
    _iso,
    _now_ms,
)
from privasync.emulators.hubspot.validation import json_body
from privasync.emulators.hubspot.webhooks import _Webhooks

_DEFAULT_PROPERTIES = ("email", "firstname", "lastname")
_READ_ONLY = re.compile(r"hs_email_optout(_\d+)?")


class _State(_Webhooks):
    """Contacts and statuses in memory; HubSpotEmulator sets these attributes."""

    _contacts: dict[str, _Contact]
    _ids: Iterator[int]
    _definitions: dict[int, _Definition]
    _statuses: dict[tuple[str, int], tuple[str, StatusChange]]
    _opted_out: set[str]
    _history: dict[str, list[StatusChange]]
    _blocklist: set[str]
    _merged_into: dict[str, str]  # a merged-away contact id -> the id of the one kept

    # -- contacts -------------------------------------------------------------------
    def _live(self, contact_id: str, archived: bool = False) -> _Contact:
        contact = self._contacts.get(contact_id)
        if contact is None or (contact.archived_ms is not None) != archived:
            raise HubSpotError(404, "Object not found.  objectId are usually numeric.",
                               "OBJECT_NOT_FOUND")
        return contact

    def _resolve(self, key: str, id_property: str | None, archived: bool = False) -> _Contact:
        """The contact ``key`` names; by id, a merged-away id names the contact kept
        (assumption: HubSpot's object reads follow a merge, as its record URLs do)."""
        if not id_property or id_property == "hs_object_id":
            while key in self._merged_into and key not in self._contacts:
                key = self._merged_into[key]
            return self._live(key, archived)
        value = key.lower() if id_property == "email" else key
        for contact in self._contacts.values():
            if contact.properties.get(id_property) == value \
                    and (contact.archived_ms is not None) == archived:
                return contact
        raise HubSpotError(404, "Object not found.", "OBJECT_NOT_FOUND")

    def _view(self, contact: _Contact, names: Iterable[str] | None = None) -> dict[str, Any]:
        props: dict[str, str | None] = {n: contact.properties.get(n)
                                        for n in (names or _DEFAULT_PROPERTIES)}
        props |= {"hs_object_id": contact.id, "createdate": _iso(contact.created_ms),
                  "lastmodifieddate": _iso(contact.updated_ms)}
        view = {"id": contact.id, "properties": props, "createdAt": _iso(contact.created_ms),
                "updatedAt": _iso(contact.updated_ms), "archived": contact.archived_ms is not None}
        if contact.archived_ms is not None:
            view["archivedAt"] = _iso(contact.archived_ms)
        return view

    @staticmethod
    def _writable(raw: object) -> dict[str, str | None]:
        """Property values as HubSpot stores them; an empty string clears (None)."""
        if not isinstance(raw, dict):
            raise HubSpotError(400, "properties must be an object")
        for name in raw:
            if _READ_ONLY.fullmatch(str(name)):
                raise HubSpotError(400, f"Property {name} is read-only; use the "
                                        "communication preferences API")
        return {str(k): ("true" if v is True else "false" if v is False else str(v) or None)
                for k, v in raw.items() if v is not None}

    def _find_email(self, email: str) -> _Contact | None:
        return next((c for c in self._contacts.values() if c.archived_ms is None
                     and c.properties.get("email") == email.lower()), None)

    def _create(self, given: Mapping[str, str | None], source: str, *,
                blocklisted: bool = False) -> _Contact:
        """A new contact; the GDPR blocklist stops the API and the UI, not a form
        submission or an import (``blocklisted`` lets one through, as HubSpot does)."""
        props = {k: v for k, v in given.items() if v is not None}
        email = props.get("email", "").strip().lower()
        if not email:
            raise HubSpotError(400, "Property email is required")
        if email in self._blocklist and not blocklisted:
            raise HubSpotError(400, "This address was GDPR-deleted and is blocklisted")
        existing = self._find_email(email)
        if existing is not None:
            raise HubSpotError(409, f"Contact already exists. Existing ID: {existing.id}",
                               "CONFLICT")
        now = _now_ms()
        contact = _Contact(str(next(self._ids)), {**props, "email": email}, now, now)
        optout = self._optout_props(contact)
        contact.properties |= {k: v for k, v in optout.items() if v is not None}
        self._contacts[contact.id] = contact
        self._emit("contact.creation", contact.id, source, changeFlag="NEW")
        return contact

    def _set_props(self, contact: _Contact, props: Mapping[str, str | None], source: str) -> None:
        """Apply changed values and fire a propertyChange for each subscribed one."""
        email = props.get("email")
        if email:
            email = email.lower()
            other = self._find_email(email)
            if other is not None and other.id != contact.id:
                raise HubSpotError(409, f"Contact already exists. Existing ID: {other.id}",
                                   "CONFLICT")
            props = {**props, "email": email}
        for name, value in props.items():
            if contact.properties.get(name) == value:
                continue
            if value is None:
                contact.properties.pop(name, None)
            else:
                contact.properties[name] = value
            contact.updated_ms = _now_ms()
            self._emit("contact.propertyChange", contact.id, source, name, value)

    def _archive(self, contact_id: str, source: str) -> None:
        contact = self._contacts.get(contact_id)
        if contact is not None and contact.archived_ms is None:
            contact.archived_ms = _now_ms()
            self._emit("contact.deletion", contact_id, source, changeFlag="DELETED")

    def _purge(self, contact: _Contact, source: str) -> None:
        """GDPR delete: the record, its statuses and their history are gone for good."""
        del self._contacts[contact.id]
        self._forget_associations(contact.id)
        email = contact.properties.get("email", "")
        self._statuses = {k: v for k, v in self._statuses.items() if k[0] != email}
        self._opted_out.discard(email)
        self._history.pop(email, None)
        self._emit("contact.privacyDeletion", contact.id, source, changeFlag="DELETED")
        self._emit("contact.deletion", contact.id, source, changeFlag="DELETED")

    def _move_associations(self, primary_id: str, merged_id: str) -> None:
        """Engagements follow a merge (privasync.emulators.hubspot.engagements overrides this)."""

    def _forget_associations(self, contact_id: str) -> None:
        """A GDPR-deleted contact has no associations left (overridden likewise)."""

    def _merge(self, primary_id: str, merged_id: str, source: str) -> _Contact:
        if primary_id == merged_id:
            raise HubSpotError(400, "Cannot merge a contact into itself")
        primary, merged = self._live(primary_id), self._live(merged_id)
        moved = {k: v for k, v in merged.properties.items()
                 if k not in primary.properties and not _READ_ONLY.fullmatch(k)}
        primary.properties |= moved
        extra = [e for e in (primary.properties.get("hs_additional_emails"),
                             merged.properties.get("email")) if e]
        primary.properties["hs_additional_emails"] = ";".join(extra)
        merged_ids = [i for i in (primary.properties.get("hs_merged_object_ids") or "")
                      .split(";") if i]
        primary.properties["hs_merged_object_ids"] = ";".join([*merged_ids, merged_id])
        primary.updated_ms = _now_ms()
        self._move_associations(primary_id, merged_id)
        self._merged_into[merged_id] = primary_id
        del self._contacts[merged_id]
        self._emit("contact.merge", primary_id, source, primaryObjectId=int(primary_id),
                   mergedObjectIds=[int(merged_id)], newObjectId=int(primary_id),
                   numberOfPropertiesMoved=len(moved), changeFlag="MERGED")
        return primary

    # -- subscription statuses ----------------------------------------------------------
    def _status_of(self, email: str, sub_id: int) -> str:
        entry = self._statuses.get((email, sub_id))
        return entry[0] if entry else NOT_SPECIFIED

    def _write_status(self, email: str, sub_id: int, state: str, source: str,
                      legal_basis: str | None = None, explanation: str | None = None) -> str:
        """Record one status; return HubSpot's ``setStatusSuccessReason``."""
        email, old = email.lower(), self._status_of(email.lower(), sub_id)
        change = StatusChange(sub_id, state, datetime.now(UTC), source, legal_basis, explanation)
        if state == NOT_SPECIFIED:
            self._statuses.pop((email, sub_id), None)
        else:
            self._statuses[(email, sub_id)] = (state, change)
        if state == SUBSCRIBED:
            self._opted_out.discard(email)
        if old == state:
            return "NO_STATUS_CHANGE"
        self._history.setdefault(email, []).append(change)
        # v4's enum (PublicStatus.setStatusSuccessReason) has no "unsubscribe occurred": an
        # opt-out is a requested change; unsubscribe-all answers UNSUBSCRIBE_FROM_ALL_OCCURRED.
        if state == SUBSCRIBED and old == NOT_SUBSCRIBED:
            return "RESUBSCRIBE_OCCURRED"
        return "REQUESTED_CHANGE_OCCURRED"

    def _unsubscribe_all(self, email: str, source: str, legal_basis: str | None = None,
                         explanation: str | None = None) -> None:
        for sub_id in self._definitions:
            self._write_status(email, sub_id, NOT_SUBSCRIBED, source, legal_basis, explanation)
        self._opted_out.add(email.lower())
        self._sync_optout(email, source)

    def _optout_props(self, contact: _Contact) -> dict[str, str | None]:
        """What the read-only ``hs_email_optout*`` properties say for this contact now."""
        email = contact.properties.get("email", "")
        states = {s: self._status_of(email, s) for s in self._definitions}
        props: dict[str, str | None] = {
            f"hs_email_optout_{s}": None if st == NOT_SPECIFIED else
            str(st == NOT_SUBSCRIBED).lower() for s, st in states.items()}
        everything = email in self._opted_out or all(st == NOT_SUBSCRIBED for st in states.values())
        current = contact.properties.get("hs_email_optout")
        props["hs_email_optout"] = "true" if everything else (
            "false" if current == "true" else current)
        return props

    def _sync_optout(self, email: str, source: str) -> None:
        contact = self._find_email(email)
        if contact is not None:
            self._set_props(contact, self._optout_props(contact), source)

    def _status_row(self, email: str, sub_id: int) -> dict[str, Any]:
        """One status entry for an address and subscription, in the emulator's (v3)
        spelling; the v4 routes translate it and drop the unset fields."""
        entry = self._statuses.get((email, sub_id))
        change = entry[1] if entry else None
        return {"subscriberIdString": email, "subscriptionId": sub_id, "channel": "EMAIL",
                "status": entry[0] if entry else NOT_SPECIFIED,
                "source": change.source if change else "",
                "subscriptionName": self._definitions[sub_id].name,
                "legalBasis": change.legal_basis if change else None,
                "legalBasisExplanation": change.explanation if change else None,
                "timestamp": change.at.isoformat() if change else _iso(_now_ms())}

    def _v3_row(self, email: str, sub_id: int) -> dict[str, Any]:
        """A v3 ``PublicSubscriptionStatus`` (v3 spelling); unset optional fields left out."""
        row = self._status_row(email, sub_id)
        v3 = {"id": str(sub_id), "name": row["subscriptionName"], "description": "",
              "status": row["status"], "legalBasis": row["legalBasis"],
              "legalBasisExplanation": row["legalBasisExplanation"],
              "sourceOfStatus": "PORTAL_WIDE_STATUS" if email in self._opted_out
              else "SUBSCRIPTION_STATUS"}
        return {k: v for k, v in v3.items() if v is not None}

    def _subscription(self, raw: object) -> int:
        try:
            sub_id = int(str(raw))
        except ValueError:
            raise HubSpotError(400, "subscriptionId must be a number") from None
        if sub_id not in self._definitions:
            raise HubSpotError(400, f"Subscription {sub_id} does not exist", "OBJECT_NOT_FOUND")
        return sub_id

    # -- request bodies -------------------------------------------------------------------
    @staticmethod
    def _body(request: Request) -> dict[str, Any]:
        body = json_body(request)
        if not isinstance(body, dict):
            raise HubSpotError(400, "Request body must be a JSON object")
        return body
