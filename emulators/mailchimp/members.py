"""Mailchimp's list members: their state, the compliance rules and the member endpoints.

The state methods expect ``self.lock`` held; the endpoints and the UI helpers take it.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Sequence
from typing import Any

from emulators.http import Request, Response
from emulators.mailchimp.common import (
    _COMPLIANCE,
    _FORGOTTEN,
    _TITLES,
    MAX_BATCH,
    MAX_PAGE,
    PREFIX,
    STATUSES,
    WRITABLE,
    Problem,
    _now,
    subscriber_hash,
)
from emulators.mailchimp.query import page_arg, select
from emulators.mailchimp.webhooks import _Webhooks

FORM_IP = "127.0.0.1"  # where the emulator's hosted-form signups come from


class _Members(_Webhooks):
    """Members keyed by subscriber hash; MailchimpEmulator sets these attributes."""

    _members: dict[str, dict[str, Any]]
    _archived_from: dict[str, str]
    _forgotten: set[str]
    _tag_ids: dict[str, int]

    @staticmethod
    def _json(request: Request) -> dict[str, Any]:
        try:
            body = request.json()
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise Problem(400, "JSON Parse Error", "The request body is not valid JSON.") from exc
        if not isinstance(body, dict):
            raise Problem(400, "JSON Parse Error", "The request body must be a JSON object.")
        return body

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
            self._fire("profile", "api", self._member_data(m))
        for permission in body.get("marketing_permissions") or []:
            for held in m["marketing_permissions"]:
                if held["marketing_permission_id"] == permission.get("marketing_permission_id"):
                    held["enabled"] = bool(permission.get("enabled"))
        return copy.deepcopy(m)

    def _create(self, email: Any, status: Any, merge_fields: Any) -> dict[str, Any]:
        if not isinstance(email, str) or "@" not in email:
            raise Problem(400, "Invalid Resource", "Please provide a valid email address.",
                          [{"field": "email_address", "message": "Invalid email address."}])
        if subscriber_hash(email) in self._forgotten:
            raise Problem(400, "Forgotten Email Not Subscribed", _FORGOTTEN)
        if status not in WRITABLE:
            raise Problem(400, "Invalid Resource", "The status is not a writable member status.",
                          [{"field": "status", "message": "Invalid status."}])
        member = self._new_member(email, str(status),
                                  merge_fields if isinstance(merge_fields, dict) else {})
        self._fire_status(member, "api")
        return copy.deepcopy(member)

    def _existing(self, match: re.Match[str]) -> dict[str, Any]:
        member = self._members.get(match["hash"])
        if member is None:
            raise Problem(404, _TITLES[404], "The requested resource could not be found.")
        return member

    # -- member endpoints ---------------------------------------------------------------
    def _get_member(self, request: Request, match: re.Match[str]) -> Response:
        with self.lock:
            member = copy.deepcopy(self._existing(match))
        return Response(200, select(member, request))

    def _list_members(self, request: Request, match: re.Match[str]) -> Response:
        """A page of members in a stable (creation) order; archived ones only when asked for."""
        count = page_arg(request, "count", 10, 1, MAX_PAGE)
        offset = page_arg(request, "offset", 0, 0, None)
        status = request.arg("status")
        if status is not None and status not in STATUSES:
            raise Problem(400, "Invalid Resource", "The status filter is not a member status.",
                          [{"field": "status", "message": "Invalid status."}])
        with self.lock:
            matching = [m for m in self._members.values()
                        if m["status"] == status or (status is None and m["status"] != "archived")]
            page = copy.deepcopy(matching[offset:offset + count])
        body = {"members": page, "list_id": self.list_id, "total_items": len(matching)}
        return Response(200, select(body, request))

    def _patch_member(self, request: Request, match: re.Match[str]) -> Response:
        body = self._json(request)
        with self.lock:
            return Response(200, self._update(self._existing(match), body))

    def _put_member(self, request: Request, match: re.Match[str]) -> Response:
        body = self._json(request)
        email = body.get("email_address")
        if not isinstance(email, str) or subscriber_hash(email) != match["hash"]:
            raise Problem(400, "Invalid Resource", "The email address does not match the hash.",
                          [{"field": "email_address", "message": "Does not match the hash."}])
        with self.lock:
            member = self._members.get(match["hash"])
            if member is not None:
                return Response(200, self._update(member, body))
            return Response(200, self._create(email, body.get("status_if_new",
                                                              body.get("status")),
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
        body = self._json(request)
        members = body.get("members")
        if not isinstance(members, list) or len(members) > MAX_BATCH:
            raise Problem(400, "Invalid Resource", f"Send a list of at most {MAX_BATCH} members.",
                          [{"field": "members", "message": f"At most {MAX_BATCH} members."}])
        created: list[dict[str, Any]] = []
        updated: list[dict[str, Any]] = []
        errors: list[dict[str, str]] = []
        with self.lock:
            for entry in members:
                entry = entry if isinstance(entry, dict) else {}
                try:
                    self._batch_one(entry, bool(body.get("update_existing")), created, updated)
                except Problem as problem:
                    errors.append({"email_address": str(entry.get("email_address", "")),
                                   "error": problem.detail,
                                   "error_code": _batch_code(problem.title)})
        return Response(200, {"new_members": created, "updated_members": updated,
                              "errors": errors, "total_created": len(created),
                              "total_updated": len(updated), "error_count": len(errors)})

    def _batch_one(self, entry: dict[str, Any], update_existing: bool,
                   created: list[dict[str, Any]], updated: list[dict[str, Any]]) -> None:
        email = entry.get("email_address")
        member = self._members.get(subscriber_hash(email)) if isinstance(email, str) else None
        if member is None:
            created.append(self._create(email, entry.get("status_if_new", entry.get("status")),
                                        entry.get("merge_fields")))
        elif not update_existing:
            raise Problem(400, "Member Exists", "The contact is already a list member.")
        else:
            updated.append(self._update(member, {k: v for k, v in entry.items()
                                                 if k != "email_address"}))


def _batch_code(title: str) -> str:
    return {"Member In Compliance State": "MEMBER_IN_COMPLIANCE_STATE",
            "Member Exists": "ERROR_CONTACT_EXISTS"}.get(title, "ERROR_GENERIC")

