"""Hypothesis against every webhook parser, through the real app with valid signatures:
HubSpot batches, Mailchimp forms, partner acks and requests, OpenDSR callbacks. Whatever
the body, the answer is a 2xx or a 4xx with a JSON reason (never a 500, never a crash),
within a deadline; a refusal stores nothing; and everything the door accepted, the
applier then applies (the door and the applier read a body by the same rules)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from core import inbox as inbox_rows
from core.db import inbox, system_refs
from core.model import EventMeta, SubjectHint, SubjectSeen, SystemRef
from tests.api.door import ACKS, ASKS, LIST_ID, Door, open_door
from tests.api.fuzzing import SENT
from tests.conftest import make_database

EXAMPLES = 200
FUZZ = settings(max_examples=EXAMPLES, deadline=timedelta(seconds=5), derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def door(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Door]:
    """One door for the module; HubSpot contacts 1001 and 1002 are people it knows, so
    that their generated property values are applied (hashed, encrypted), not set aside."""
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    for door in open_door(make_database("sqlite", tmp), tmp):
        c = door.container
        now = c.clock()
        c.store_events("seed", [SubjectSeen(EventMeta("seed", f"seen-{n}", now), SubjectHint(
            SystemRef("hubspot", f"contact:{n}"), f"person{n}@example.org"))
            for n in (1001, 1002)], now)
        c.applier.tick()
        yield door


# Any text, lone surrogates and NUL included; numbers of any size; any JSON shape.
# Surrogates and NUL are rare among all code points: a small alphabet of the awkward ones
# makes sure they come up.
TEXT = st.one_of(st.text(st.characters(exclude_categories=()), max_size=40),
                 st.text(st.sampled_from("aZ@.é\ud800\udfff\x00\u2028 \"\\"), max_size=12))
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-2**70, 2**70),
                   st.floats(allow_nan=False), TEXT)
JSON = st.recursive(SCALAR, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)), max_leaves=12)


def mostly(*good: Any, bad: st.SearchStrategy[Any] = JSON) -> st.SearchStrategy[Any]:
    """One of the ``good`` values three times in four, else anything ``bad`` makes."""
    return st.one_of(st.sampled_from(good), st.sampled_from(good), st.sampled_from(good), bad)


IDS = mostly(1001, 1002, 1001, 2**63 - 1, bad=st.one_of(st.integers(-2**70, 2**70), JSON))
EMAIL = mostly("fuzz@example.org", "other@example.org",
               bad=st.one_of(TEXT, st.builds(lambda a, b: f"{a}@{b}", TEXT, TEXT)))
VALUE = st.one_of(TEXT, st.sampled_from(["true", "false", "", "Zeph\ud800", "a\x00b"]))


def hubspot_events() -> st.SearchStrategy[Any]:
    event = st.fixed_dictionaries({
        "eventId": IDS, "objectId": IDS,
        "occurredAt": mostly(1_767_225_600_000, 0, bad=st.one_of(st.integers(), JSON)),
        "subscriptionType": mostly("contact.creation", "contact.deletion", "contact.merge",
                                   "contact.privacyDeletion", "contact.propertyChange",
                                   "contact.propertyChange", "contact.propertyChange",
                                   "contact.restore", bad=TEXT),
        "propertyName": mostly("hs_email_optout", "hs_email_optout_101", "firstname",
                               "email", "phone", "date_of_birth", "health_note",
                               "hs_lifecyclestage_customer_date", bad=TEXT),
        "propertyValue": st.one_of(VALUE, VALUE, JSON)},
        optional={"portalId": IDS, "subscriptionId": IDS, "appId": IDS, "attemptNumber": IDS,
                  "primaryObjectId": IDS, "mergedObjectIds": st.one_of(st.lists(IDS,
                                                                                max_size=4), JSON),
                  "changeSource": VALUE, "changeFlag": VALUE})
    return st.one_of(st.lists(event, min_size=1, max_size=2), st.lists(event, max_size=2)
                     .map(lambda b: b + [{}]), st.lists(event, max_size=5), JSON)


def forms() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({
        "type": mostly("subscribe", "unsubscribe", "profile", "cleaned", "upemail",
                       "campaign", bad=TEXT),
        "fired_at": mostly("2026-01-01 10:00:00", "2009-03-26 21:40:57", bad=TEXT),
        "data[list_id]": mostly(LIST_ID, bad=TEXT), "data[email]": EMAIL},
        optional={"data[id]": TEXT, "data[merges][FNAME]": VALUE, "data[merges][BIRTHDAY]":
                  VALUE, "data[merges][INTERESTS]": VALUE, "data[old_email]": EMAIL,
                  "data[new_email]": EMAIL, "data[reason]": mostly("abuse", "hard", bad=TEXT),
                  "data[action]": mostly("unsub", "delete", bad=TEXT), "data[merges]": TEXT,
                  "data": TEXT})


def acks() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({
        "request_id": mostly(str(uuid.UUID(int=7)), bad=st.one_of(TEXT, JSON)),
        "status": mostly("completed", "rejected", bad=st.one_of(TEXT, JSON))},
        optional={"detail": st.one_of(VALUE, JSON), "note": JSON})


def asks() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({
        "request_id": mostly(str(uuid.UUID(int=8)), bad=st.one_of(TEXT, JSON)),
        "kind": mostly("erasure", "access", "portability", "objection", bad=TEXT),
        "email": EMAIL},
        optional={"identity_verified": mostly(True, False), "extra": JSON})


def callbacks() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({
        "subject_request_id": mostly(str(uuid.UUID(int=9, version=4)), bad=TEXT),
        "request_status": mostly("pending", "in_progress", "completed", "cancelled", bad=TEXT)},
        optional={"expected_completion_time": mostly("2026-03-01T00:00:00+00:00", bad=TEXT),
                  "results_count": mostly(0, 3, bad=JSON), "results_url": JSON,
                  "api_version": JSON, "encoded_request": JSON})


def answered(response: httpx.Response, door: Door, before: int) -> None:
    """A 2xx, or a 4xx with a JSON reason that stored nothing; never a 5xx."""
    assert response.status_code < 500, response.text
    document = response.json()
    if response.status_code >= 400:
        assert set(document) >= {"error", "reason"}, document
        assert stored(door) == before
    else:
        assert set(document) == {"accepted", "duplicate"}, document


def stored(door: Door) -> int:
    with door.container.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(inbox)).scalar_one())


@FUZZ
@given(document=hubspot_events())
def test_hubspot_batches(door: Door, document: Any) -> None:
    SENT["hubspot"] += 1
    before = stored(door)
    answered(door.hubspot(json.dumps(document).encode()), door, before)


@FUZZ
@given(body=st.binary(max_size=200))
def test_hubspot_raw_bytes(door: Door, body: bytes) -> None:
    SENT["hubspot bytes"] += 1
    before = stored(door)
    answered(door.hubspot(body), door, before)


@FUZZ
@given(form=forms())
def test_mailchimp_forms(door: Door, form: dict[str, Any]) -> None:
    SENT["mailchimp"] += 1
    body = "&".join(f"{quote(str(k), errors='surrogatepass')}="
                    f"{quote(str(v), errors='surrogatepass')}" for k, v in form.items())
    before = stored(door)
    answered(door.mailchimp(body.encode()), door, before)


@FUZZ
@given(body=st.binary(max_size=200))
def test_mailchimp_raw_bytes(door: Door, body: bytes) -> None:
    SENT["mailchimp bytes"] += 1
    before = stored(door)
    answered(door.mailchimp(body), door, before)


@FUZZ
@given(document=st.one_of(acks(), asks()))
def test_partner_acks_and_requests(door: Door, document: dict[str, Any]) -> None:
    SENT["partner"] += 1
    path = ASKS if "kind" in document else ACKS
    before = stored(door)
    answered(door.partner(path, {"event_id": str(uuid.uuid4())} | document), door, before)


@FUZZ
@given(document=acks(), event_id=st.one_of(TEXT, JSON))
def test_partner_event_ids(door: Door, document: dict[str, Any], event_id: Any) -> None:
    """The event id itself generated (it is also the header, when it is text)."""
    SENT["partner ids"] += 1
    header = event_id if isinstance(event_id, str) and event_id.isprintable() \
        and event_id.isascii() else "x"
    before = stored(door)
    answered(door.partner(ACKS, document | {"event_id": event_id}, event_id=header), door,
             before)


@FUZZ
@given(document=callbacks())
def test_opendsr_callbacks(door: Door, document: dict[str, Any]) -> None:
    SENT["opendsr"] += 1
    from tests.api.door import BASE, CONTROLLER, OPENDSR

    document = {"controller_id": CONTROLLER, "status_callback_url": BASE + OPENDSR} | document
    before = stored(door)
    answered(door.opendsr(document), door, before)


def test_whatever_the_door_accepted_the_applier_applies(door: Door) -> None:
    """Runs after the fuzzing above (same module, same database)."""
    applier = door.container.applier
    for _ in range(200):
        with door.container.engine.connect() as conn:
            if not inbox_rows.backlog(conn).rows:
                break
        applier.tick()
    with door.container.engine.connect() as conn:
        accepted = conn.execute(select(func.count()).select_from(inbox)).scalar_one()
        left = conn.execute(select(inbox.c.source, inbox.c.last_error, inbox.c.attempts)
                            .where(inbox.c.applied_at.is_(None)
                                   | inbox.c.last_error.is_not(None))).all()
    assert accepted > 0
    assert left == [], [tuple(r) for r in left]
    with door.container.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(system_refs)).scalar_one() >= 2
