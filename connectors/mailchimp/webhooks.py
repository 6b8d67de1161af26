"""Mailchimp webhook deliveries -> canonical events.

Mailchimp posts ``application/x-www-form-urlencoded`` bodies with PHP-style
keys (``data[merges][EMAIL]``) and signs nothing: the receiver authenticates
by a secret in the URL before calling this. Every refusal names the field,
never its value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from urllib.parse import parse_qsl

from core.errors import BadInput
from core.model import (
    CanonicalEvent,
    Channel,
    ConsentChange,
    ConsentChanged,
    ConsentStatus,
    EventMeta,
    Evidence,
    FieldValue,
    IdentifierChanged,
    RecordChanged,
    SubjectHint,
    SubjectSeen,
    require_aware,
)
from core.strict_json import text_problem

SOURCE = "mailchimp"
FormTree = dict[str, "str | FormTree"]
_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
# A delivery is a few dozen fields of a few KB (merge fields included); anything much larger
# is no Mailchimp delivery, and is refused before it is parsed.
MAX_BODY_BYTES = 65_536
MAX_FIELDS = 200
MAX_KEY_DEPTH = 4  # data[merges][GROUPINGS][0]
# Parts of field names that Mailchimp uses and reasons may name: its own keys, and merge tags
# (upper case, at most 10 characters) or indexes. Any other part is shown as "?", since a
# sender chooses the names as well as the values.
_NAMED = frozenset({"type", "fired_at", "data", "id", "list_id", "email", "email_type",
                    "ip_opt", "ip_signup", "action", "reason", "campaign_id", "new_id",
                    "new_email", "old_email", "merges", "web_id", "interests",
                    "sms_phone_number", "subject", "status"})
_TAG = re.compile(r"^[A-Z0-9_]{1,10}$")


def field_label(path: list[str]) -> str:
    """``data[merges][FNAME]``, with parts Mailchimp would not send shown as ``?``."""
    shown = [p if p in _NAMED or _TAG.match(p) else "?" for p in path]
    return shown[0] + "".join(f"[{p}]" for p in shown[1:])


def _path(key: str) -> list[str]:
    """``data[merges][FNAME]`` -> ``["data", "merges", "FNAME"]``; BadInput if malformed."""
    match = _KEY.match(key)
    if match is None:
        raise BadInput("webhook body has a malformed form key")
    return [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]


def fold(pairs: list[tuple[str, str]]) -> FormTree:
    """Fold ``data[a][b]=v`` pairs into nested dicts; refuse clashing keys."""
    tree: FormTree = {}
    for key, value in pairs:
        path = _path(key)
        if len(path) > MAX_KEY_DEPTH:
            raise BadInput(f"webhook field names nest at most {MAX_KEY_DEPTH} levels")
        node = tree
        for depth, part in enumerate(path[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise BadInput(f"webhook field {field_label(path[:depth + 1])} is both a "
                               "value and a group")
            node = child
        if isinstance(node.get(path[-1]), dict):
            raise BadInput(f"webhook field {field_label(path)} is both a value and a group")
        node[path[-1]] = value
    return tree


def parse_form(body: bytes) -> FormTree:
    """The form as a tree, within bounds: BadInput for a body over ``MAX_BODY_BYTES`` or
    ``MAX_FIELDS`` (checked before parsing), a malformed form, or a name or value that is
    not UTF-8 or holds a NUL (named by its field, never shown)."""
    if len(body) > MAX_BODY_BYTES:
        raise BadInput(f"webhook body is larger than {MAX_BODY_BYTES} bytes")
    if body.count(b"&") + 1 > MAX_FIELDS:
        raise BadInput(f"webhook body has more than {MAX_FIELDS} fields")
    try:
        # Invalid bytes, raw or %-escaped, become lone surrogates: reported with their field.
        pairs = parse_qsl(body.decode("utf-8", "surrogateescape"), keep_blank_values=True,
                          strict_parsing=True, errors="surrogateescape")
    except ValueError as exc:
        raise BadInput("webhook body is not form data") from exc
    for key, value in pairs:
        problem = text_problem(key)
        if problem:
            raise BadInput(f"webhook body: a field name {problem}")
        problem = text_problem(value)
        if problem:
            raise BadInput(f"webhook field {field_label(_path(key))} {problem}")
    return fold(pairs)


class _Delivery:
    """One parsed delivery: typed access to its fields, and event building blocks."""

    def __init__(self, form: FormTree, body: bytes, received_at: datetime,
                 list_id: str, purposes: tuple[str, ...], event_id: Callable[[bytes], str],
                 fields: Mapping[str, str] | None = None) -> None:
        self.type = self._text(form, "type", "type", required=True)
        data = form.get("data", {})
        if not isinstance(data, dict):
            raise BadInput("webhook field data is not a group")
        self.data = data
        self.fired_at = self._fired_at(form)
        if self.field("list_id", required=True) != list_id:
            raise BadInput("webhook field data[list_id] is not the configured list")
        self.list_id = list_id
        self.purposes = purposes
        self.fields = dict(fields or {})
        self.meta = EventMeta(source=SOURCE, source_event_id=event_id(body),
                              occurred_at=min(self.fired_at, require_aware(received_at,
                                                                           "received_at")),
                              kind=f"{SOURCE}.{self.type}")

    @staticmethod
    def _text(tree: FormTree, key: str, label: str, required: bool = False) -> str:
        value = tree.get(key, "")
        if not isinstance(value, str):
            raise BadInput(f"webhook field {label} is a group, not a value")
        if required and not value.strip():
            raise BadInput(f"webhook field {label} is missing")
        return value.strip()

    def field(self, key: str, required: bool = False) -> str:
        return self._text(self.data, key, f"data[{key}]", required)

    def merge(self, tag: str) -> str:
        """``data[merges][TAG]``, stripped; empty when absent."""
        merges = self.data.get("merges", {})
        if not isinstance(merges, dict):
            raise BadInput("webhook field data[merges] is not a group")
        return self._text(merges, tag, f"data[merges][{tag}]")

    def email(self, key: str = "email") -> str:
        value = self.field(key, required=True)
        if "@" not in value or any(c.isspace() for c in value):
            raise BadInput(f"webhook field data[{key}] is not an e-mail address")
        return value

    def _fired_at(self, form: FormTree) -> datetime:
        value = self._text(form, "fired_at", "fired_at", required=True)
        try:
            return datetime.strptime(f"{value} +0000", "%Y-%m-%d %H:%M:%S %z")
        except ValueError as exc:
            raise BadInput("webhook field fired_at is not YYYY-MM-DD HH:MM:SS") from exc

    def hint(self, email: str) -> SubjectHint:
        """Members are found by their address (privasync keeps no member id: Mailchimp's
        is the MD5 of the address, which a list of addresses reverses)."""
        return SubjectHint(email=email)

    def proof(self, email: str) -> str:
        member = f":member:{self.field('id')}" if self.field("id") else ""
        return f"mailchimp:list:{self.list_id}{member}:{self.fired_at.isoformat()}"

    def consent(self, status: ConsentStatus, method: str,
                channel: Channel = Channel.EMAIL) -> list[CanonicalEvent]:
        email = self.email()
        if not self.purposes:
            return [SubjectSeen(meta=self.meta, subject=self.hint(email))]
        changes = tuple(ConsentChange(p, channel, status) for p in self.purposes)
        evidence = Evidence(source=SOURCE, method=method, proof_reference=self.proof(email))
        return [ConsentChanged(meta=self.meta, subject=self.hint(email), changes=changes,
                               evidence=evidence)]

    def seen(self) -> list[CanonicalEvent]:
        return [SubjectSeen(meta=self.meta, subject=self.hint(self.email()))]


def _unsubscribe(d: _Delivery) -> list[CanonicalEvent]:
    action = d.field("action") or "unsub"
    return d.consent(ConsentStatus.WITHDRAWN, f"mailchimp_{action}")


def _subscribe(d: _Delivery) -> list[CanonicalEvent]:
    return d.consent(ConsentStatus.GRANTED, "mailchimp_signup_form")


def _cleaned(d: _Delivery) -> list[CanonicalEvent]:
    # A spam complaint is an objection to direct marketing (Art. 21); a bounce is not.
    if d.field("reason") == "abuse":
        return d.consent(ConsentStatus.WITHDRAWN, "mailchimp_spam_complaint")
    return d.seen()


def _upemail(d: _Delivery) -> list[CanonicalEvent]:
    old, new = d.email("old_email"), d.email("new_email")
    return [IdentifierChanged(meta=d.meta, subject=d.hint(old), new_email=new)]


def _profile(d: _Delivery) -> list[CanonicalEvent]:
    """Mapped merge fields with a value, collected at ``fired_at``; else the member was seen.

    A profile delivery carries every merge field, changed or not, so an empty one
    cannot be told from one the list never held: it is not read as a clearing.
    """
    email = d.email()
    found: list[tuple[str, FieldValue]] = []
    for tag, canonical in d.fields.items():
        value = d.merge(tag)
        if value:
            found.append((canonical, FieldValue(value, collected_at=d.fired_at)))
    if not found:
        return d.seen()
    return [RecordChanged(meta=d.meta, subject=d.hint(email), fields=tuple(found))]


def _campaign(d: _Delivery) -> list[CanonicalEvent]:
    return []


# The SMS events (the Marketing API's webhook events since its 2026-04-30 definition, [BETA]).
# Mailchimp publishes their names, not their fields: that the contact's address comes as
# ``data[email]``, as in every member event, is an assumption. privasync finds people by
# address only, so an SMS event without one (an SMS-only contact) is refused, naming the
# field, rather than recorded against nobody. The phone number is never read.
def _sms_unsubscribe(d: _Delivery) -> list[CanonicalEvent]:
    """The list's purposes withdrawn on the SMS channel (R2: consent is per channel)."""
    return d.consent(ConsentStatus.WITHDRAWN, "mailchimp_sms_unsub", Channel.SMS)


def _sms_subscribe(d: _Delivery) -> list[CanonicalEvent]:
    """A grant on SMS, as a ``subscribe`` is one on e-mail: both come from Mailchimp's own
    opt-in, whose evidence is the delivery."""
    return d.consent(ConsentStatus.GRANTED, "mailchimp_sms_signup", Channel.SMS)


def _acknowledged(d: _Delivery) -> list[CanonicalEvent]:
    """``upsms`` (a new SMS number) and ``sms_campaign`` (an SMS campaign sent): accepted and
    acknowledged, nothing kept. privasync holds no phone number, so a new one is not learned;
    a campaign send says nothing about anyone's consent."""
    return []


_TRANSLATE: dict[str, Callable[[_Delivery], list[CanonicalEvent]]] = {
    "subscribe": _subscribe,
    "unsubscribe": _unsubscribe,
    "cleaned": _cleaned,
    "profile": _profile,
    "upemail": _upemail,
    "campaign": _campaign,
    "sms_subscribe": _sms_subscribe,
    "sms_unsubscribe": _sms_unsubscribe,
    "upsms": _acknowledged,
    "sms_campaign": _acknowledged,
}
# What each part of the connector needs delivered (``check`` names any not enabled):
# withdrawals and grants for the list's purposes, on e-mail and SMS; address changes always;
# profile updates when merge fields are mapped.
CONSENT_EVENTS = ("subscribe", "unsubscribe", "cleaned", "sms_subscribe", "sms_unsubscribe")
IDENTITY_EVENTS = ("upemail",)
FIELD_EVENTS = ("profile",)


def parse_webhook(body: bytes, received_at: datetime, *, list_id: str,
                  purposes: tuple[str, ...], event_id: Callable[[bytes], str],
                  fields: Mapping[str, str] | None = None) -> list[CanonicalEvent]:
    """Translate one delivery. Raises BadInput naming the field that is wrong.

    ``occurred_at`` is ``fired_at`` (UTC), but never later than ``received_at``:
    a sender clock running ahead must not let an event outrank later ones.
    ``fields`` maps merge tags to canonical field names (the mapping's ``fields``).
    ``event_id`` names a delivery by its bytes: a keyed hash (the body holds an address).
    """
    form = parse_form(body)
    kind = _Delivery._text(form, "type", "type", required=True)
    translate = _TRANSLATE.get(kind)
    if translate is None:
        raise BadInput("webhook field type is not a known Mailchimp event type")
    return translate(_Delivery(form, body, received_at, list_id, purposes, event_id, fields))


def named(events: Sequence[CanonicalEvent]) -> list[str]:
    """Every address these events name: each is, or was a moment ago, on the list."""
    found: list[str] = []
    for event in events:
        subject = getattr(event, "subject", None)
        if isinstance(subject, SubjectHint) and subject.email:
            found.append(subject.email)
        if isinstance(event, IdentifierChanged) and event.new_email:
            found.append(event.new_email)
    return found
