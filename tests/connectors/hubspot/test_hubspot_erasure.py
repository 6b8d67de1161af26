"""erase against the HubSpot emulator: what HubSpot holds afterwards, the receipts, the cost."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from connectors.hubspot import HubSpotConnector
from core.errors import AuthError, PermanentError, TransientError
from core.model import ErasureStatus, PersonAt
from privasync.emulators.http import Fault, Request, Response
from privasync.emulators.hubspot import HubSpotEmulator
from tests.connectors.hubspot.conftest import MAPPING, TOKEN
from tests.emulators.conftest import serve
from tests.timing import scaled

CONTACTS = "/crm/v3/objects/contacts"
PURGE, READ = f"{CONTACTS}/gdpr-delete", f"{CONTACTS}/batch/read"


class ScriptedHubSpot(HubSpotEmulator):
    """The emulator, but the n-th request to a path gets a canned answer instead."""

    def __init__(self) -> None:
        super().__init__(access_token=TOKEN)
        self.script: dict[tuple[str, int], Response] = {}
        self._seen: Counter[str] = Counter()

    def dispatch(self, request: Request) -> Response:
        with self.lock:
            self._seen[request.path] += 1
            canned = self.script.pop((request.path, self._seen[request.path]), None)
        return canned if canned is not None else super().dispatch(request)

    def reset(self) -> None:
        super().reset()
        with self.lock:
            self.script.clear()
            self._seen.clear()


@pytest.fixture(scope="module")
def scripted_server() -> Iterator[ScriptedHubSpot]:
    yield from serve(ScriptedHubSpot())


@pytest.fixture
def scripted(scripted_server: ScriptedHubSpot) -> ScriptedHubSpot:
    scripted_server.reset()
    return scripted_server


def connector(hub: HubSpotEmulator, token: str = TOKEN) -> HubSpotConnector:
    return HubSpotConnector(base_url=hub.url, access_token=token, client_secret="s",
                            mapping=MAPPING, timeout=scaled(5))


def person(sid: str, *emails: str, refs: tuple[str, ...] = ()) -> PersonAt:
    return PersonAt(subject_id=sid, request_id=f"dsr-{sid}", emails=emails,
                    refs=tuple(f"contact:{r}" for r in refs))


def test_one_person_is_gdpr_deleted_and_read_back_gone(hub: HubSpotEmulator) -> None:
    ada = hub.create_contact("ada@example.org", firstname="Ada", city="London")
    [receipt] = connector(hub).erase([person("s1", "Ada@Example.org", refs=(ada,))])

    assert (receipt.subject_id, receipt.status, receipt.error) == ("s1", ErasureStatus.DONE, None)
    assert (receipt.vendor_status, receipt.records) == (204, 1)
    assert receipt.verified == "batch read by email: 0 of 1 found; contacts by id: 0 of 1 found"
    assert receipt.vendor_request_id
    assert hub.contact(ada) is None and hub.find_by_email("ada@example.org") is None
    assert hub.total_calls(PURGE) == 1 and hub.total_calls(READ) == 3
    assert hub.total_calls() == 4


def test_several_people_by_address_and_by_ref_one_unknown(hub: HubSpotEmulator) -> None:
    home, work = hub.create_contact("ada@example.org"), hub.create_contact("ada@work.example")
    bob = hub.create_contact("bob.private@example.net", lastname="Smith")
    dan = hub.create_contact("dan@example.org")
    receipts = connector(hub).erase([
        person("ada", "ada@example.org", "ada@work.example", refs=(home,)),
        person("bob", refs=(bob,)),             # an address privasync never knew
        person("carol", "carol@example.org"),   # never in HubSpot
    ])

    assert [(r.subject_id, r.error, r.records, r.vendor_status) for r in receipts] == [
        ("ada", None, 2, 204), ("bob", None, 1, 204), ("carol", None, 0, 204)]
    assert receipts[0].verified == \
        "batch read by email: 0 of 2 found; contacts by id: 0 of 2 found"
    assert receipts[1].verified == "contacts by id: 0 of 1 found"
    assert receipts[2].verified == "batch read by email: 0 of 1 found"
    assert [hub.contact(c) for c in (home, work, bob)] == [None, None, None]
    assert hub.contact(dan) is not None
    assert hub.is_blocklisted("carol@example.org")
    assert hub.total_calls(PURGE) == 4 and hub.total_calls(READ) == 3


def test_a_second_erase_finds_nothing_and_is_done(hub: HubSpotEmulator) -> None:
    ada, bob = hub.create_contact("ada@example.org"), hub.create_contact("bob@example.net")
    people = [person("ada", "ada@example.org", refs=(ada,)), person("bob", refs=(bob,))]
    connector(hub).erase(people)
    again = connector(hub).erase(people)

    assert [(r.status, r.error, r.records, r.vendor_status) for r in again] == [
        (ErasureStatus.DONE, None, 0, 204), (ErasureStatus.DONE, None, 0, 404)]
    assert again[0].verified == "batch read by email: 0 of 1 found; contacts by id: 0 of 1 found"
    assert hub.is_blocklisted("ada@example.org")


def test_a_rate_limit_on_the_first_delete_fails_the_whole_call(hub: HubSpotEmulator) -> None:
    ada = hub.create_contact("ada@example.org")
    hub.inject(Fault(429, {"status": "error", "errorType": "RATE_LIMIT"},
                     headers={"Retry-After": "7"}, path_pattern="gdpr-delete"))
    with pytest.raises(TransientError) as caught:
        connector(hub).erase([person("ada", "ada@example.org"), person("bob", "b@example.org")])
    assert (caught.value.retry_after, caught.value.error_class) == (7.0, "http_429")
    assert hub.contact(ada) is not None and hub.total_calls(PURGE) == 0


def test_a_server_error_on_one_delete_is_that_persons_transient_error(
        hub: HubSpotEmulator) -> None:
    ada, bob = hub.create_contact("ada@example.org"), hub.create_contact("bob@example.net")
    hub.inject(Fault(503, {"status": "error"}, headers={"Retry-After": "30"},
                     path_pattern="gdpr-delete"))
    failed, done = connector(hub).erase([person("ada", "ada@example.org"),
                                         person("bob", "bob@example.net")])

    assert isinstance(failed.error, TransientError)
    assert (failed.error.retry_after, failed.error.error_class) == (30.0, "http_503")
    assert (failed.vendor_status, failed.records) == (None, 0)
    assert (done.error, done.records) == (None, 1)
    assert hub.contact(ada) is not None and hub.contact(bob) is None


def test_a_bare_bad_gateway_is_retried_within_the_call(hub: HubSpotEmulator) -> None:
    ada = hub.create_contact("ada@example.org")
    hub.inject(Fault(502, {"status": "error"}, path_pattern="gdpr-delete"))
    [receipt] = connector(hub).erase([person("ada", "ada@example.org")])
    assert (receipt.error, receipt.records) == (None, 1)
    assert hub.contact(ada) is None


def test_a_rate_limit_midway_keeps_earlier_receipts_and_stops_asking(
        scripted: ScriptedHubSpot) -> None:
    ada, bob = scripted.create_contact("ada@example.org"), scripted.create_contact("b@example.net")
    carol = scripted.create_contact("carol@example.org")
    scripted.script[(PURGE, 2)] = Response(429, {"status": "error", "errorType": "RATE_LIMIT"},
                                           {"Retry-After": "5"})
    done, limited, skipped = connector(scripted).erase([
        person("ada", "ada@example.org"), person("bob", "b@example.net"),
        person("carol", "carol@example.org")])

    assert (done.error, done.records, done.vendor_status) == (None, 1, 204)
    for receipt in (limited, skipped):
        assert isinstance(receipt.error, TransientError)
        assert (receipt.error.retry_after, receipt.error.error_class) == (5.0, "http_429")
        assert receipt.records == 0
    assert scripted.contact(ada) is None
    assert scripted.contact(bob) is not None and scripted.contact(carol) is not None
    assert scripted.total_calls(PURGE) == 1


def test_a_contact_still_readable_after_the_delete_is_not_done(hub: HubSpotEmulator) -> None:
    ada = hub.create_contact("ada@example.org")
    hub.inject(Fault(204, path_pattern="gdpr-delete"))  # answered, but nothing deleted
    [receipt] = connector(hub).erase([person("ada", "ada@example.org", refs=(ada,))])

    assert isinstance(receipt.error, TransientError)
    assert receipt.error.error_class == "still_readable"
    assert "ada@" not in str(receipt.error)
    assert receipt.verified == "batch read by email: 1 of 1 found; contacts by id: 1 of 1 found"
    assert (receipt.vendor_status, receipt.records) == (204, 0)
    assert hub.contact(ada) is not None


def test_a_failed_read_back_leaves_the_erasure_unproven(scripted: ScriptedHubSpot) -> None:
    ada = scripted.create_contact("ada@example.org")
    scripted.script[(READ, 2)] = Response(500, {"status": "error"})
    [receipt] = connector(scripted).erase([person("ada", "ada@example.org")])

    assert isinstance(receipt.error, TransientError)
    assert (receipt.error.error_class, receipt.vendor_status, receipt.records) == (
        "http_500", 204, 1)
    assert receipt.verified == "not verified: the read-back failed"
    assert scripted.contact(ada) is None


def test_a_person_without_address_or_ref_is_refused_without_a_call(
        hub: HubSpotEmulator) -> None:
    [receipt] = connector(hub).erase([PersonAt("s1", "dsr-1", (), ("company:7",))])
    assert isinstance(receipt.error, PermanentError)
    assert receipt.error.error_class == "no_identifier"
    assert hub.total_calls() == 0


def test_a_rejected_token_fails_the_whole_call(hub: HubSpotEmulator) -> None:
    ada = hub.create_contact("ada@example.org")
    with pytest.raises(AuthError):
        connector(hub, token="wrong").erase([person("ada", "ada@example.org")])
    assert hub.contact(ada) is not None


def test_a_full_batch_costs_one_delete_per_address_and_three_reads(
        hub: HubSpotEmulator) -> None:
    eraser = connector(hub)
    ids = [hub.create_contact(f"p{i}@example.org") for i in range(eraser.erase_batch_size)]
    receipts = eraser.erase([person(f"s{i}", f"p{i}@example.org", refs=(c,))
                             for i, c in enumerate(ids)])

    assert all(r.error is None and r.records == 1 for r in receipts)
    assert hub.total_calls(PURGE) == eraser.erase_batch_size == 50
    assert hub.total_calls(READ) == 3
    assert hub.total_calls() == 53


def test_a_read_back_answered_with_an_error_is_not_done(scripted: ScriptedHubSpot) -> None:
    scripted.create_contact("ada@example.org")
    scripted.script[(READ, 2)] = Response(207, {"status": "COMPLETE", "results": [], "errors": [
        {"status": "error", "category": "VALIDATION_ERROR", "message": "invalid",
         "context": {"ids": ["ada@example.org"]}}]})
    [receipt] = connector(scripted).erase([person("ada", "ada@example.org")])

    assert isinstance(receipt.error, TransientError)
    assert receipt.error.error_class == "not_verified"
    assert receipt.verified == \
        "batch read by email: 0 of 1 found, 1 unanswered; contacts by id: 0 of 1 found"
