"""People privasync has not seen on the audience: answered from what it already knows (its
last complete read of the list, a recent 404) plus one read of the list's changes, never
skipped when they are on it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests

from connectors.mailchimp import MailchimpConnector, subscriber_hash
from connectors.mailchimp.audience import ListMoved
from connectors.mailchimp.destination import NOTE_ABSENT
from connectors.mailchimp.membership import ABSENT_FOR, Absent
from core.mappings import SystemMapping
from core.model import (
    Channel,
    ConsentState,
    ConsentStatus,
    DestinationRecord,
    DestinationSubject,
)
from privasync.emulators.http import Fault
from privasync.emulators.mailchimp import MailchimpEmulator
from tests.connectors.mailchimp.conftest import (
    CONSENT_ONLY,
    KEY,
    KEYS,
    LIST,
    WITH_FIELDS,
    webhook_endpoint,
)
from tests.timing import scaled

WHEN = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
MEMBERS = f"/3.0/lists/{LIST}/members"
ONE_BY_ONE = f"{MEMBERS}/"  # a member's own path: a look-up (or any call) per person
HOUR = 3600.0


class Clock:
    """The connector's clock: the real time, moved on by ``ahead``."""

    def __init__(self) -> None:
        self.ahead = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.ahead


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def api(mc: MailchimpEmulator) -> requests.Session:
    session = requests.Session()
    session.auth = ("privasync", KEY)
    return session


def connect(mc: MailchimpEmulator, clock: Clock, mapping: SystemMapping = CONSENT_ONLY,
            max_age: float = HOUR) -> MailchimpConnector:
    return MailchimpConnector(base_url=f"{mc.url}/3.0", api_key=KEY, list_id=LIST,
                              mapping=mapping, keys=KEYS, timeout=scaled(5),
                              directory_max_age=max_age, clock=clock)


def withdrawn(sid: str, email: str, unlisted_at: datetime | None) -> DestinationSubject:
    return DestinationSubject(
        subject_id=sid, email=email, refs=(), unlisted_at=unlisted_at,
        consents=(ConsentState("offers", Channel.EMAIL, ConsentStatus.WITHDRAWN, WHEN, "crm"),))


def strangers(n: int, unlisted_at: datetime | None) -> list[DestinationSubject]:
    return [withdrawn(f"s{i}", f"stranger{i}@example.com", unlisted_at) for i in range(n)]


def read_the_list(connector: MailchimpConnector) -> datetime:
    """A complete read of the list, as the directory refresh makes it; returns its start."""
    started = datetime.now(UTC)
    list(connector.addresses())
    list(connector.kept())
    return started


def test_a_backlog_of_withdrawals_for_people_not_on_the_audience_looks_nobody_up(
        mc: MailchimpEmulator, clock: Clock) -> None:
    for i in range(30):
        mc.add_member(f"member{i}@example.com")
    connector = connect(mc, clock)
    read = read_the_list(connector)
    before = mc.total_calls()
    backlog = strangers(1000, read)
    outcomes = []
    for start in range(0, len(backlog), connector.batch_size):
        outcomes += connector.apply_consent(backlog[start:start + connector.batch_size])
    assert mc.total_calls(ONE_BY_ONE) == 0
    # Per batch of 500: the members changed since the read, and the archived ones.
    assert mc.total_calls() - before == mc.total_calls(MEMBERS) - 2 == 4
    assert [o.note for o in outcomes] == [NOTE_ABSENT] * 1000
    assert all(o.error is None and not o.learned_refs for o in outcomes)


def test_someone_who_joined_after_the_read_is_still_found_and_unsubscribed(
        mc: MailchimpEmulator, clock: Clock) -> None:
    connector = connect(mc, clock)
    read = read_the_list(connector)
    mc.user_subscribe("late@example.com")  # a signup form, after the read
    outcomes = connector.apply_consent([*strangers(5, read), withdrawn("late", "late@example.com",
                                                                       read)])
    assert mc.member("late@example.com")["status"] == "unsubscribed"  # type: ignore[index]
    assert outcomes[-1].note == "unsubscribed" and outcomes[-1].learned_refs
    assert [o.note for o in outcomes[:-1]] == [NOTE_ABSENT] * 5
    assert mc.total_calls(ONE_BY_ONE) == 1  # only the one who changed is looked up


def test_someone_who_joined_after_the_read_still_gets_their_fields(
        mc: MailchimpEmulator, clock: Clock) -> None:
    connector = connect(mc, clock, WITH_FIELDS)
    read = read_the_list(connector)
    mc.add_member("imported@example.com")  # an import, after the read: no webhook at all
    records = [DestinationRecord(f"s{i}", f"stranger{i}@example.com", (),
                                 {"first_name": "S"}, unlisted_at=read) for i in range(5)]
    outcomes = connector.push_fields([*records, DestinationRecord(
        "late", "imported@example.com", (), {"first_name": "Ima"}, unlisted_at=read)])
    assert mc.member("imported@example.com")["merge_fields"] == {"FNAME": "Ima"}  # type: ignore[index]
    assert outcomes[-1].error is None and outcomes[-1].learned_refs
    assert {o.note for o in outcomes[:-1]} == {"not a member"}
    assert mc.total_calls(ONE_BY_ONE) == 1


def test_someone_who_joined_and_was_archived_after_the_read_is_still_unsubscribed(
        mc: MailchimpEmulator, clock: Clock, api: requests.Session) -> None:
    connector = connect(mc, clock)
    read = read_the_list(connector)
    mc.add_member("brief@example.com")
    assert api.delete(f"{mc.url}{MEMBERS}/{subscriber_hash('brief@example.com')}",
                      timeout=scaled(5)).status_code == 204  # archived
    outcomes = connector.apply_consent([*strangers(5, read),
                                        withdrawn("brief", "brief@example.com", read)])
    assert outcomes[-1].note == "unsubscribed"
    assert mc.member("brief@example.com")["status"] == "unsubscribed"  # type: ignore[index]


def test_a_read_older_than_the_connector_relies_on_is_not_taken_as_an_answer(
        mc: MailchimpEmulator, clock: Clock) -> None:
    connector = connect(mc, clock, max_age=HOUR)
    stale = datetime.now(UTC) - timedelta(hours=2)
    outcomes = connector.apply_consent(strangers(10, stale))
    assert mc.total_calls(ONE_BY_ONE) == 10 and mc.total_calls(MEMBERS) == 10
    assert {o.note for o in outcomes} == {NOTE_ABSENT}
    never = connect(mc, clock, max_age=0)  # the directory is not read at all
    never.apply_consent(strangers(10, datetime.now(UTC)))
    assert mc.total_calls(ONE_BY_ONE) == 20


def test_changes_longer_than_the_look_ups_they_would_save_are_not_read(
        mc: MailchimpEmulator, clock: Clock) -> None:
    connector = connect(mc, clock)
    read = read_the_list(connector)
    for i in range(3000):  # joined since the read: four pages of changes
        mc.add_member(f"new{i}@example.com")
    connector.apply_consent(strangers(3, read))
    assert mc.total_calls(MEMBERS) - 2 == 1 + 3  # the first page of changes, then each
    assert mc.total_calls(ONE_BY_ONE) == 3


def test_changes_that_cannot_be_read_whole_mean_each_person_is_looked_up(
        mc: MailchimpEmulator, clock: Clock) -> None:
    connector = connect(mc, clock)
    read = read_the_list(connector)
    mc.add_member("late@example.com")
    mc.inject(Fault(200, {"members": []}, path_pattern=rf"{MEMBERS}$"))  # no total_items
    outcomes = connector.apply_consent([*strangers(5, read),
                                        withdrawn("late", "late@example.com", read)])
    assert mc.total_calls(ONE_BY_ONE) == 6
    assert outcomes[-1].note == "unsubscribed"


def test_a_404_is_not_asked_again_while_remembered_and_is_once_forgotten(
        mc: MailchimpEmulator, clock: Clock) -> None:
    connector = connect(mc, clock, max_age=0)
    people = strangers(10, None)
    connector.apply_consent(people)
    assert mc.total_calls(ONE_BY_ONE) == 10
    clock.ahead = ABSENT_FOR - timedelta(seconds=30)
    outcomes = connector.apply_consent(people)
    assert mc.total_calls(ONE_BY_ONE) == 10  # no look-up: the changes since say nobody came
    assert {o.note for o in outcomes} == {NOTE_ABSENT}
    clock.ahead = ABSENT_FOR + timedelta(seconds=30)
    connector.apply_consent(people)
    assert mc.total_calls(ONE_BY_ONE) == 20  # forgotten: asked again


def test_someone_a_404_answered_who_joined_since_is_found(mc: MailchimpEmulator,
                                                         clock: Clock) -> None:
    connector = connect(mc, clock, max_age=0)
    people = [*strangers(5, None), withdrawn("late", "late@example.com", None)]
    assert {o.note for o in connector.apply_consent(people)} == {NOTE_ABSENT}
    mc.user_subscribe("late@example.com")
    outcomes = connector.apply_consent(people)
    assert outcomes[-1].note == "unsubscribed"
    assert mc.member("late@example.com")["status"] == "unsubscribed"  # type: ignore[index]


def test_a_subscribe_webhook_clears_what_a_404_taught_even_if_the_changes_miss_it(
        mc: MailchimpEmulator, clock: Clock) -> None:
    """The changes read relies on Mailchimp's clock; what a webhook names needs none."""
    connector = connect(mc, clock, max_age=0)
    people = [*strangers(5, None), withdrawn("late", "late@example.com", None)]
    connector.apply_consent(people)
    with webhook_endpoint() as (url, bodies):
        mc.configure_webhook(url)
        mc.user_subscribe("late@example.com")
        assert mc.flush_webhooks()
    for body in bodies:
        connector.parse_webhook(body, datetime.now(UTC))
    empty = {"members": [], "total_items": 0}  # changes read as if the clocks were apart
    mc.inject(*(Fault(200, empty, path_pattern=rf"{MEMBERS}$") for _ in range(2)))
    outcomes = connector.apply_consent(people)
    assert outcomes[-1].note == "unsubscribed"
    assert mc.member("late@example.com")["status"] == "unsubscribed"  # type: ignore[index]


def test_the_404s_remembered_are_bounded_the_oldest_going_first() -> None:
    absent, now = Absent(limit=2), datetime.now(UTC)
    for n, member_hash in enumerate(("a", "b", "c")):
        absent.add(member_hash, now + timedelta(seconds=n))
    assert [absent.since(h, now) for h in ("a", "b", "c")] == [
        None, now + timedelta(seconds=1), now + timedelta(seconds=2)]


def test_a_list_that_moves_under_its_read_more_than_the_pages_overlap_is_not_taken_whole(
        mc: MailchimpEmulator, clock: Clock, api: requests.Session) -> None:
    for i in range(1500):
        mc.add_member(f"r{i}@example.com")
    connector = connect(mc, clock)

    def archive(emails: list[str]) -> None:
        for email in emails:
            api.delete(f"{mc.url}{MEMBERS}/{subscriber_hash(email)}",
                       timeout=scaled(5)).raise_for_status()

    read = connector.addresses()
    first = [next(read) for _ in range(1000)]
    archive(first[:20])  # fewer than the overlap: nobody after them is skipped
    rest = list(read)
    assert set(first + rest) == {f"r{i}@example.com" for i in range(1500)}
    read = connector.addresses()
    first = [next(read) for _ in range(1000)]
    archive(first[20:120])  # more than the overlap: the next page could skip someone
    with pytest.raises(ListMoved):
        list(read)
