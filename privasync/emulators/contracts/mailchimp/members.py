"""List members: the member path, the writes privasync sends and the answers it reads.

Sources: see ``common`` ([S1] 3.0.55 definitions, [S2] the 2026-04-30 definition).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_validator

from privasync.emulators.contracts.mailchimp.common import (
    BATCH_LIMIT,
    Closed,
    Link,
    MemberStatus,
    ReadStatus,
)

# [S2] subscriber_hash: "The MD5 hash of the lowercase version of the list member's email
# address. This endpoint also accepts a list member's email address or contact_id."
MD5 = re.compile(r"^[0-9a-f]{32}$")


def member_key_kind(key: str) -> Literal["hash", "email", "contact_id"]:
    """Which of the three forms a member path names. An MD5 is 32 lower-case hex digits
    (as privasync sends it); an address has an ``@``; anything else is read as a contact_id
    (assumption: [S2] gives contact_id no format, so it is whatever is neither)."""
    if MD5.match(key):
        return "hash"
    return "email" if "@" in key else "contact_id"


def _timestamp(value: str | None) -> str | None:
    """ISO 8601 with its zone, or "" ([S2] ``TimestampOpt = string | ""``)."""
    if value:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError("a timestamp carries its zone")
    return value


class AddressMerge(Closed):
    """[S2] an ADDRESS merge field's value."""

    addr1: str
    addr2: str | None = None
    city: str
    state: str
    zip: str
    country: str | None = None


MergeValue = str | int | float | AddressMerge


class PermissionWrite(Closed):
    """[S1] "Marketing Permission_1"."""

    marketing_permission_id: str | None = None
    enabled: bool | None = None


class LocationWrite(Closed):
    """[S1] "Location"; [S2] numbers or numeric strings."""

    latitude: float | str | None = None
    longitude: float | str | None = None


class _MemberWrite(Closed):
    email_address: str | None = None
    email_type: str | None = None
    status: MemberStatus | None = None
    merge_fields: dict[str, MergeValue] | None = None
    interests: dict[str, bool] | None = None
    language: str | None = None
    vip: bool | None = None
    location: LocationWrite | None = None
    ip_signup: str | None = None
    timestamp_signup: str | None = None
    ip_opt: str | None = None
    timestamp_opt: str | None = None

    _zoned = field_validator("timestamp_signup", "timestamp_opt")(_timestamp)


class MemberPatch(_MemberWrite):
    """PATCH /lists/{list_id}/members/{subscriber_hash}: [S1] "Add List Members_3",
    [S2] UpdateMemberListsRequest (whose status enum adds ``transactional``)."""

    marketing_permissions: list[PermissionWrite] | None = None


class MemberPut(_MemberWrite):
    """PUT /lists/{list_id}/members/{subscriber_hash}: [S2] UpsertMemberListsRequest.
    ``email_address`` is required; ``status_if_new`` is "required only if the email address
    is not already present on the list" ([S2]; [S1] required it always)."""

    email_address: str
    status_if_new: MemberStatus | None = None
    marketing_permissions: list[PermissionWrite] | None = None
    tags: list[str] | None = None


class BatchMember(_MemberWrite):
    """One entry of POST /lists/{list_id}: [S1] "Add List Members" (no property required by
    the schema: a missing address or status is refused per member, see the emulator)."""


class BatchRequest(Closed):
    """POST /lists/{list_id}: [S1] "Members to Subscribe/Unsubscribe to/from a List in
    batch" (``members`` required, at most 500)."""

    members: list[BatchMember] = Field(max_length=BATCH_LIMIT)
    sync_tags: bool | None = None
    update_existing: bool | None = None


# -- answers ---------------------------------------------------------------------------
class MemberStats(Closed):
    avg_open_rate: float | None = None
    avg_click_rate: float | None = None
    ecommerce_data: dict[str, Any] | None = None


class MemberLocation(Closed):
    """[S1] "Location_2"."""

    latitude: float | None = None
    longitude: float | None = None
    gmtoff: int | None = None
    dstoff: int | None = None
    country_code: str | None = None
    timezone: str | None = None
    region: str | None = None


class MemberPermission(Closed):
    marketing_permission_id: str | None = None
    text: str | None = None
    enabled: bool | None = None


class MemberTag(Closed):
    id: int | None = None
    name: str | None = None


class Member(Closed):
    """A list member as read ([S2] ListMembers); every property optional, since ``fields``
    and ``exclude_fields`` cut answers down."""

    id: str | None = None
    email_address: str | None = None
    unique_email_id: str | None = None
    contact_id: str | None = None
    full_name: str | None = None
    web_id: int | None = None
    email_type: str | None = None
    status: ReadStatus | None = None
    unsubscribe_reason: str | None = None
    consents_to_one_to_one_messaging: bool | None = None
    sms_phone_number: str | None = None
    sms_subscription_status: Literal["subscribed", "unsubscribed", "nonsubscribed",
                                     "pending"] | None = None
    sms_subscription_last_updated: str | None = None
    merge_fields: dict[str, MergeValue] | None = None
    interests: dict[str, bool] | None = None
    stats: MemberStats | None = None
    ip_signup: str | None = None
    timestamp_signup: str | None = None
    ip_opt: str | None = None
    timestamp_opt: str | None = None
    member_rating: int | None = None
    last_changed: str | None = None
    language: str | None = None
    vip: bool | None = None
    email_client: str | None = None
    location: MemberLocation | None = None
    marketing_permissions: list[MemberPermission] | None = None
    last_note: dict[str, Any] | None = None
    source: str | None = None
    tags_count: int | None = None
    tags: list[MemberTag] | None = None
    list_id: str | None = None
    links: list[Link] | None = Field(default=None, alias="_links")

    _zoned = field_validator("timestamp_signup", "timestamp_opt", "last_changed")(_timestamp)


class MembersPage(Closed):
    """GET /lists/{list_id}/members: [S1] "List Members_2" (the collection)."""

    members: list[Member] | None = None
    list_id: str | None = None
    total_items: int | None = None
    links: list[Link] | None = Field(default=None, alias="_links")


class BatchError(Closed):
    """[S1]/[S2] "Batch update List members_errors": ``error_code`` is one of two."""

    email_address: str | None = None
    error: str | None = None
    error_code: Literal["ERROR_CONTACT_EXISTS", "ERROR_GENERIC"] | None = None
    field: str | None = None
    field_message: str | None = None


class BatchAnswer(Closed):
    """[S1] "Batch update List members"."""

    new_members: list[Member] | None = None
    updated_members: list[Member] | None = None
    errors: list[BatchError] | None = None
    total_created: int | None = None
    total_updated: int | None = None
    error_count: int | None = None
    links: list[Link] | None = Field(default=None, alias="_links")
