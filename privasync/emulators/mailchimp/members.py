"""Mailchimp's list members: their state, the compliance rules and the member endpoints.

The state methods expect ``self.lock`` held; the endpoints and the UI helpers take it.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from privasync.emulators.contracts.mailchimp.members import (
    BatchMember,
    BatchRequest,
    MemberPatch,
    MemberPut,
    member_key_kind,
)
from privasync.emulators.http import Request, Response
from privasync.emulators.mailchimp.common import (
    _COMPLIANCE,
    _FORGOTTEN,
    _TITLES,
    MAX_PAGE,
    PREFIX,
    STATUSES,
    WRITABLE,
    Problem,
    _now,
    subscriber_hash,
    validated,
)
from privasync.emulators.mailchimp.query import page_arg, select
from privasync.emulators.mailchimp.webhooks import _Webhooks

FORM_IP = "127.0.0.1"  # where the emulator's hosted-form signups come from


class _Members(_Webhooks):
    """Members keyed by subscriber hash; MailchimpEmulator sets these attributes."""

    _members: dict[str, dict[str, Any]]
    _archived_from: dict[str, str]
    _forgotten: set[str]
    _tag_ids: dict[str, int]

    # -- member state ----------------------------------------------------------------
    def _new_member(self, email: str, status: str, merge_fields: dict[str, Any], *,
                    source: str = "API - Generic", tags: Sequence[str] = (),
                    language: str = "") -> dict[str, Any]:
        """The member view Mailchimp answers with: only a hosted form records a signup IP."""
        now, member_hash = _now().isoformat(timespec="seconds"), subscriber_hash(email)
        form_ip = FORM_IP if source == "Hosted Signup Form" else ""
        member: dict[str, Any] = {
            "id": member_hash, "email_address": email, "unique_email_id": uuid.uuid4().hex[:10],
            "contact_id": uuid.uuid4().hex, "email_type": "html", "status": status,
            "merge_fields": dict(merge_fields), "stats": {"avg_open_rate": 0, "avg_click_rate": 0},
            "ip_signup": form_ip, "timestamp_signup": now if form_ip else "", "ip_opt": form_ip,
            "timestamp_opt": now if status == "subscribed" else "", "member_rating": 2,
            "last_changed": now, "language": language, "vip": False,
            "location": {"latitude": 0, "longitude": 0, "gmtoff": 0, "dstoff": 0,
                         "country_code": "", "timezone": "", "region": ""},
            "marketing_permissions": [{"marketing_permission_id": "c0d2b0d3f1", "text": "Email",
                                       "enabled": status == "subscribed"}],
            "source": source, "tags_count": len(tags),
            "tags": [{"id": self._tag_ids.setdefault(t, 100 + len(self._tag_ids)), "name": t}
                     for t in dict.fromkeys(tags)],
            "list_id": self.list_id, "_links": self._links(member_hash)}
        self._members[member_hash] = member
        return member

    def _links(self, member_hash: str) -> list[dict[str, str]]:
        """The hypermedia links every member carries (most of its bytes, none of its data)."""
        href = f"https://us6.api.mailchimp.com{PREFIX}/lists/{self.list_id}/members/{member_hash}"
        return [{"rel": rel, "href": f"{href}{suffix}", "method": method,
                 "targetSchema": f"https://us6.api.mailchimp.com/schema/3.0/{schema}.json"}
                for rel, suffix, method, schema in (
                    ("self", "", "GET", "Definitions/Lists/Members/Response"),
                    ("update", "", "PATCH", "Definitions/Lists/Members/Response"),
                    ("delete", "", "DELETE", ""),
                    ("activity", "/activity", "GET", "Definitions/Lists/Members/Activity"),
                    ("notes", "/notes", "GET", "Definitions/Lists/Members/Notes"))]

    def _set_status(self, m: dict[str, Any], status: str) -> bool:
        """Apply Mailchimp's compliance rule; return whether the status changed."""
        if status not in WRITABLE:
            raise Problem(400, "Invalid Resource", "The status is not a writable member status.",
                          [{"field": "status", "message": "Invalid status."}])
        current = m["status"]
        if current == "archived":
            current = self._archived_from.get(m["id"], current)
        if status == "subscribed" and current in ("unsubscribed", "cleaned"):
            raise Problem(400, "Member In Compliance State", _COMPLIANCE)
        if m["status"] == status:
            return False
        self._mark(m, status)
        return True

    def _mark(self, m: dict[str, Any], status: str) -> None:
        """Set a status as Mailchimp records it; archiving remembers the status before."""
        if status == "archived":
            self._archived_from[m["id"]] = m["status"]
        else:
            self._archived_from.pop(m["id"], None)
        m["status"], m["last_changed"] = status, _now().isoformat(timespec="seconds")
        if status == "subscribed":
            m["timestamp_opt"] = m["last_changed"]

    def _rekey(self, m: dict[str, Any], new_email: str, source: str) -> None:
        new_hash = subscriber_hash(new_email)
        if new_hash in self._members or new_hash in self._forgotten:
            raise Problem(400, "Member Exists", "The new address is already on the list.")
        del self._members[m["id"]]
        old_email, m["id"], m["email_address"] = m["email_address"], new_hash, new_email
        m["last_changed"] = _now().isoformat(timespec="seconds")
        self._members[new_hash] = m
        self._fire("upemail", source, [
            ("data[list_id]", self.list_id), ("data[new_id]", m["unique_email_id"]),
            ("data[new_email]", new_email), ("data[old_email]", old_email)])

    def _update(self, m: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        """An API write to an existing member: status, merge fields, permissions, address."""
        new_email = body.get("email_address")
        if isinstance(new_email, str) and new_email.lower() != m["email_address"].lower():
            self._rekey(m, new_email, "api")
        if isinstance(body.get("status"), str) and self._set_status(m, body["status"]):
            self._fire_status(m, "api")
        if isinstance(body.get("merge_fields"), dict) and body["merge_fields"]:
            m["merge_fields"].update(body["merge_fields"])
            self._touch(m)
            self._fire("profile", "api", self._member_data(m))
        for permission in body.get("marketing_permissions") or []:
            for held in m["marketing_permissions"]:
                if held["marketing_permission_id"] == permission.get("marketing_permission_id"):
                    held["enabled"] = bool(permission.get("enabled"))
                    self._touch(m)
        return copy.deepcopy(m)

    def _touch(self, m: dict[str, Any]) -> None:
        """The member's information changed: ``last_changed`` says when ([S1] "The date and
        time the member's info was last changed")."""
        m["last_changed"] = _now().isoformat(timespec="seconds")

    def _create(self, email: Any, status: Any, merge_fields: Any) -> dict[str, Any]:
        if not isinstance(email, str) or "@" not in email:
            raise Problem(400, "Invalid Resource", "Please provide a valid email address.",
                          [{"field": "email_address", "message": "Invalid email address."}])
        if subscriber_hash(email) in self._forgotten:
            raise Problem(400, "Forgotten Email Not Subscribed", _FORGOTTEN)
        if status not in WRITABLE:
            # The schema leaves status optional; a new member without one is refused
            # (documentation: "status_if_new" is required when the address is new).
            raise Problem(400, "Invalid Resource", "A new member needs a status.",
                          [{"field": "status", "message": "This value should not be blank."}])
        member = self._new_member(email, str(status),
                                  merge_fields if isinstance(merge_fields, dict) else {})
        self._fire_status(member, "api")
        return copy.deepcopy(member)

    def _find(self, key: str) -> dict[str, Any] | None:
        """The member a path names: its MD5 subscriber hash, its address or its contact_id
        (the specification's three forms); the raw path is %-decoded first."""
        key = unquote(key)
        kind = member_key_kind(key)
        if kind == "hash":
            found = self._members.get(key)
            if found is not None:
                return found
        elif kind == "email":
            return self._members.get(subscriber_hash(key))
        return next((m for m in self._members.values() if m["contact_id"] == key), None)

    def _existing(self, match: re.Match[str]) -> dict[str, Any]:
        member = self._find(match["member"])
        if member is None:
            raise Problem(404, _TITLES[404], "The requested resource could not be found.")
        return member

    # -- member endpoints ---------------------------------------------------------------
    def _get_member(self, request: Request, match: re.Match[str]) -> Response:
        with self.lock:
            member = copy.deepcopy(self._existing(match))
        return Response(200, select(member, request))

    def _list_members(self, request: Request, match: re.Match[str]) -> Response:
        """A page of members in a stable (creation) order; archived ones only when asked for;
        with ``since_last_changed``, only those whose ``last_changed`` is at or after it
        ([S1] "Restrict results to subscribers whose information changed after the set
        timeframe"; at the same second counts, an assumption: the value has seconds only)."""
        count = page_arg(request, "count", 10, 1, MAX_PAGE)
        offset = page_arg(request, "offset", 0, 0, None)
        status = request.arg("status")
        if status is not None and status not in STATUSES:
            raise Problem(400, "Invalid Resource", "The status filter is not a member status.",
                          [{"field": "status", "message": "Invalid status."}])
        since = _since(request.arg("since_last_changed"))
        with self.lock:
            matching = [m for m in self._members.values()
                        if (m["status"] == status
                            or (status is None and m["status"] != "archived"))
                        and (since is None
                             or datetime.fromisoformat(m["last_changed"]) >= since)]
            page = copy.deepcopy(matching[offset:offset + count])
        body = {"members": page, "list_id": self.list_id, "total_items": len(matching)}
        return Response(200, select(body, request))

    def _patch_member(self, request: Request, match: re.Match[str]) -> Response:
        body = validated(request, MemberPatch).model_dump(exclude_none=True)
        with self.lock:
            return Response(200, self._update(self._existing(match), body))

    def _put_member(self, request: Request, match: re.Match[str]) -> Response:
        """Add or update. An existing member is found by any of the three forms; a new one
        only under its own address or that address's hash (a contact_id names nobody new)."""
        put = validated(request, MemberPut)
        body = put.model_dump(exclude_none=True)
        key = unquote(match["member"])
        with self.lock:
            member = self._find(key)
            if member is not None:
                if subscriber_hash(put.email_address) != member["id"] and \
                        member_key_kind(key) != "contact_id":
                    raise Problem(400, "Invalid Resource", _MISMATCH,
                                  [{"field": "email_address", "message": _MISMATCH}])
                body.pop("status_if_new", None)
                return Response(200, self._update(member, body))
            if key.lower() not in (put.email_address.lower(),
                                   subscriber_hash(put.email_address)):
                raise Problem(400, "Invalid Resource", _MISMATCH,
                              [{"field": "email_address", "message": _MISMATCH}])
            return Response(200, self._create(put.email_address, put.status_if_new or put.status,
                                              body.get("merge_fields")))

    def _archive_member(self, request: Request, match: re.Match[str]) -> Response:
        with self.lock:
            member = self._existing(match)
            if member["status"] != "archived":
                self._mark(member, "archived")
                self._fire_status(member, "api", action="delete")
        return Response(204)

    def _delete_permanent(self, request: Request, match: re.Match[str]) -> Response:
        with self.lock:
            member = self._existing(match)
            del self._members[member["id"]]
            self._archived_from.pop(member["id"], None)
            self._forgotten.add(member["id"])
        return Response(204)

    def _batch(self, request: Request, match: re.Match[str]) -> Response:
        """Each member is written or refused on its own; a refusal carries one of the two
        codes the specification lists, ERROR_CONTACT_EXISTS (already a member, and
        ``update_existing`` not set) or ERROR_GENERIC (anything else), with the field when
        one is at fault."""
        batch = validated(request, BatchRequest)
        created: list[dict[str, Any]] = []
        updated: list[dict[str, Any]] = []
        errors: list[dict[str, str]] = []
        with self.lock:
            for entry in batch.members:
                try:
                    self._batch_one(entry, bool(batch.update_existing), created, updated)
                except Problem as problem:
                    errors.append(_batch_error(entry, problem))
        return Response(200, {"new_members": created, "updated_members": updated,
                              "errors": errors, "total_created": len(created),
                              "total_updated": len(updated), "error_count": len(errors)})

    def _batch_one(self, entry: BatchMember, update_existing: bool,
                   created: list[dict[str, Any]], updated: list[dict[str, Any]]) -> None:
        if not entry.email_address:
            raise Problem(400, "Invalid Resource", "An email address is required.",
                          [{"field": "email_address",
                            "message": "This value should not be blank."}])
        member = self._members.get(subscriber_hash(entry.email_address))
        body = entry.model_dump(exclude_none=True)
        if member is None:
            created.append(self._create(entry.email_address, entry.status,
                                        body.get("merge_fields")))
        elif not update_existing:
            raise Problem(400, "Member Exists", "The contact is already a list member.")
        else:
            body.pop("email_address")
            updated.append(self._update(member, body))


_MISMATCH = "The email address does not match the member the path names."


def _since(value: str | None) -> datetime | None:
    """``since_last_changed`` as the time it names: ISO 8601 with its offset ([S1]: "Uses ISO
    8601 time format: 2015-10-21T15:41:36+00:00"); anything else is refused, naming the
    field (assumption: the specification gives no error for it)."""
    if value is None:
        return None
    try:
        since = datetime.fromisoformat(value)
    except ValueError:
        since = None
    if since is None or since.tzinfo is None:
        raise Problem(400, "Invalid Resource", "since_last_changed is not an ISO 8601 time.",
                      [{"field": "since_last_changed", "message": "Invalid value."}])
    return since


def _batch_error(entry: BatchMember, problem: Problem) -> dict[str, str]:
    """A per-member refusal as the batch answer lists it."""
    error = {"email_address": entry.email_address or "", "error": problem.detail,
             "error_code": "ERROR_CONTACT_EXISTS" if problem.title == "Member Exists"
             else "ERROR_GENERIC"}
    if problem.errors:
        error["field"] = problem.errors[0]["field"]
        error["field_message"] = problem.errors[0]["message"]
    return error
