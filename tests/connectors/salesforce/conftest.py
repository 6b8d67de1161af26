"""The Salesforce emulator and connector the Salesforce connector tests share, and their helpers.

Tests import the plain helpers and constants from here:
`from tests.connectors.salesforce.conftest import MAPPING, later`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from connectors.salesforce import SalesforceConnector
from connectors.salesforce.poller import PollResult
from core.mappings import load_mappings
from core.model import SystemRef
from privasync.app.taxonomy import data_categories
from privasync.emulators.salesforce import SalesforceEmulator
from tests.emulators.conftest import serve

MAPPING = load_mappings(Path(__file__).parents[3] / "mappings",
                        data_categories()).system("salesforce")
COMPOSITE = "/services/data/v59.0/composite/sobjects"
QUERY = "/services/data/v59.0/query"
SOBJECTS = "/services/data/v59.0/sobjects"
LIMIT_BODY = [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]


@pytest.fixture
def emulator() -> Iterator[SalesforceEmulator]:
    yield from serve(SalesforceEmulator())


@pytest.fixture
def connector(emulator: SalesforceEmulator) -> SalesforceConnector:
    return SalesforceConnector(instance_url=emulator.url, session_id=emulator.session_id,
                               mapping=MAPPING)


def later(emulator: SalesforceEmulator) -> datetime:
    """getUpdated truncates to the minute: let a minute pass before polling."""
    emulator.advance(timedelta(minutes=2))
    return emulator.now()


def at_a_minute_start(emulator: SalesforceEmulator) -> datetime:
    """Move the org's clock to just past a minute boundary, so the test's changes
    all fall in one minute that getUpdated cannot report yet."""
    now = emulator.now()
    emulator.advance(timedelta(minutes=1, seconds=1)
                     - timedelta(seconds=now.second, microseconds=now.microsecond))
    return emulator.now()


def poll_by_both_paths(emulator: SalesforceEmulator, connector: SalesforceConnector,
                       change: Callable[[str], object],
                       ) -> tuple[str, PollResult, PollResult, int]:
    """Make `change` to a new Contact, poll it by the SOQL path, then by getUpdated once a
    minute has passed. Returns the Contact, both polls, and the query count just before
    the getUpdated poll."""
    at_a_minute_start(emulator)
    contact = emulator.create_contact("ada@example.com")
    first = connector.poll(None, emulator.now())
    change(contact)
    by_soql = connector.poll(first.cursor, emulator.now())
    emulator.advance(timedelta(seconds=10))  # a newer change moves the cursor past the overlap
    emulator.create_contact("other@example.com")
    moved = connector.poll(by_soql.cursor, emulator.now())
    before = emulator.total_calls(QUERY)

    by_get_updated = connector.poll(moved.cursor, later(emulator))
    return contact, by_soql, by_get_updated, before


def stamp(emulator: SalesforceEmulator, record_id: str) -> datetime:
    value = (emulator.record(record_id) or {})["SystemModstamp"]
    assert isinstance(value, datetime)
    return value


def ref(record_id: str, sobject: str = "Contact") -> SystemRef:
    return SystemRef("salesforce", f"{sobject}:{record_id}")
