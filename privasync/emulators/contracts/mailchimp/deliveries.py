"""What Mailchimp posts to a list webhook: ``application/x-www-form-urlencoded`` with
PHP-style keys (``data[merges][FNAME]``), ``type`` and ``fired_at`` (``YYYY-MM-DD
HH:MM:SS``, UTC) around a ``data`` group whose fields depend on the type.

Sources:
- [D2] Mailchimp's guide "Sync audience data with webhooks",
  https://mailchimp.com/developer/marketing/guides/sync-audience-data-webhooks/ : the
  envelope, the form encoding, the subscribe and unsubscribe fields (``action`` unsub or
  delete), the validation GET.
- [D3] Mailchimp's answer in mailchimp/mailchimp-client-lib-codegen issue #232 (2021-08-30):
  a campaign delivery's data holds ``id``, ``subject``, ``status`` and, unless sent,
  ``reason``.
- [D4] Mailchimp's older webhook documentation as summarised in VENDOR_APIS.md C: cleaned
  (``reason`` hard or abuse, ``campaign_id``), profile, upemail (``new_id``, ``new_email``,
  ``old_email``).
- [S2] (see ``common``): the SMS event names. Their data fields are published nowhere we
  could read: the models below assume the member events' envelope, ``data[email]`` when the
  contact has an address and the member property name ``sms_phone_number`` for the phone
  (assumption, marked on each field).
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, Field

from privasync.emulators.contracts.mailchimp.lists import EventType

FIRED_AT = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"  # [D2]
Merges = dict[str, "str | dict[str, str]"]
_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


class _Data(BaseModel):
    """Deliveries are read, not written, by privasync: a field Mailchimp adds later must not
    make the contract refuse a real delivery, so extras are allowed here."""

    model_config = ConfigDict(extra="allow", strict=True)

    list_id: str  # [D2] every event names its list


class MemberData(_Data):
    """subscribe, profile [D2]/[D4]."""

    id: str
    email: str
    email_type: str | None = None
    ip_opt: str | None = None
    ip_signup: str | None = None
    web_id: str | None = None
    merges: Merges | None = None
    interests: str | None = None


class UnsubscribeData(MemberData):
    """[D2]: ``action`` unsub (the person) or delete (an admin deleted the member)."""

    action: Literal["unsub", "delete"]
    reason: str | None = None
    campaign_id: str | None = None


class CleanedData(_Data):
    """[D4]: ``reason`` hard (a bounce) or abuse (a spam complaint)."""

    email: str
    reason: Literal["hard", "abuse"]
    campaign_id: str | None = None


class UpemailData(_Data):
    """[D4]."""

    new_id: str
    new_email: str
    old_email: str


class CampaignData(_Data):
    """[D3]."""

    id: str
    subject: str | None = None
    status: str
    reason: str | None = None


class SmsData(_Data):
    """sms_subscribe, sms_unsubscribe, upsms (assumption: see the module's docstring)."""

    id: str | None = None
    email: str | None = None  # assumption: present when the contact has an address
    sms_phone_number: str | None = None  # assumption: the member property's name [S2]
    merges: Merges | None = None


class SmsCampaignData(_Data):
    """sms_campaign (assumption: shaped like a campaign delivery [D3])."""

    id: str
    status: str | None = None


DATA: dict[str, type[_Data]] = {
    "subscribe": MemberData, "profile": MemberData, "unsubscribe": UnsubscribeData,
    "cleaned": CleanedData, "upemail": UpemailData, "campaign": CampaignData,
    "sms_subscribe": SmsData, "sms_unsubscribe": SmsData, "upsms": SmsData,
    "sms_campaign": SmsCampaignData,
}


class Delivery(BaseModel):
    """The envelope [D2]."""

    model_config = ConfigDict(extra="forbid", strict=True)

    type: EventType
    fired_at: str = Field(pattern=FIRED_AT)
    data: dict[str, object]


def fold(body: bytes) -> dict[str, object]:
    """The form as nested groups: ``data[merges][FNAME]=x`` -> {data: {merges: {FNAME: x}}}."""
    tree: dict[str, object] = {}
    for key, value in parse_qsl(body.decode("utf-8"), keep_blank_values=True,
                                strict_parsing=True):
        match = _KEY.match(key)
        if match is None:
            raise ValueError("malformed form key")
        path = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        node = tree
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ValueError("a form key is both a value and a group")
            node = child
        node[path[-1]] = value
    return tree


def parse_delivery(body: bytes) -> tuple[Delivery, _Data]:
    """Validate one posted body: the envelope, then the data its type publishes. Raises
    pydantic.ValidationError or ValueError."""
    delivery = Delivery.model_validate(fold(body))
    return delivery, DATA[delivery.type].model_validate(delivery.data)
