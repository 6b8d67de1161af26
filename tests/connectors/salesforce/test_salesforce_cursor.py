"""The poll cursor survives storage as JSON and refuses anything else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from connectors.salesforce import SalesforceCursor
from core.errors import BadInput


def test_a_cursor_round_trips_through_json_with_its_zones():
    cursor = SalesforceCursor(datetime(2024, 1, 2, 10, 0, tzinfo=UTC),
                              datetime(2024, 1, 2, 11, 0, tzinfo=timezone(timedelta(hours=2))))

    again = SalesforceCursor.from_json(cursor.to_json())

    assert again == cursor
    assert again.deleted_until.utcoffset() == timedelta(hours=2)
    assert again.modstamp_until is None


def test_a_cursor_with_a_modstamp_round_trips_through_json():
    cursor = SalesforceCursor(datetime(2024, 1, 2, 10, 0, tzinfo=UTC),
                              datetime(2024, 1, 2, 10, 0, tzinfo=UTC),
                              datetime(2024, 1, 2, 10, 0, 42, 123000,
                                       tzinfo=timezone(timedelta(hours=-5))))

    again = SalesforceCursor.from_json(cursor.to_json())

    assert again == cursor
    assert again.modstamp_until is not None
    assert again.modstamp_until.utcoffset() == timedelta(hours=-5)
    assert again.modstamp_until.microsecond == 123000


@pytest.mark.parametrize("text", [
    '{"updated_until": "2024-01-02T10:00:00+00:00", "deleted_until": "2024-01-02T10:00:00Z"}',
    '{"updated_until": "2024-01-02T10:00:00+00:00", "deleted_until": "2024-01-02T10:00:00Z",'
    ' "modstamp_until": null}',
])
def test_a_cursor_stored_before_the_modstamp_path_still_loads(text):
    cursor = SalesforceCursor.from_json(text)

    assert cursor.modstamp_until is None
    assert cursor.updated_until == datetime(2024, 1, 2, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize("text", [
    "",
    "not json",
    "[]",
    "{}",
    '{"updated_until": "2024-01-02T10:00:00+00:00"}',
    '{"updated_until": "yesterday", "deleted_until": "2024-01-02T10:00:00+00:00"}',
    '{"updated_until": 5, "deleted_until": "2024-01-02T10:00:00+00:00"}',
    '{"updated_until": "2024-01-02T10:00:00", "deleted_until": "2024-01-02T10:00:00+00:00"}',
    '"2024-01-02T10:00:00+00:00"',
    '{"updated_until": "2024-01-02T10:00:00Z", "deleted_until": "2024-01-02T10:00:00Z",'
    ' "modstamp_until": "2024-01-02T10:00:00"}',
    '{"updated_until": "2024-01-02T10:00:00Z", "deleted_until": "2024-01-02T10:00:00Z",'
    ' "modstamp_until": "soon"}',
    '{"updated_until": "2024-01-02T10:00:00Z", "deleted_until": "2024-01-02T10:00:00Z",'
    ' "modstamp_until": 17}',
])
def test_from_json_refuses_garbage_and_naive_datetimes(text):
    with pytest.raises(BadInput):
        SalesforceCursor.from_json(text)


def test_a_cursor_cannot_be_built_from_a_naive_datetime():
    aware = datetime(2024, 1, 2, tzinfo=UTC)
    with pytest.raises(BadInput):
        SalesforceCursor(datetime(2024, 1, 2), aware)  # noqa: DTZ001
    with pytest.raises(BadInput):
        SalesforceCursor(aware, aware, datetime(2024, 1, 2))  # noqa: DTZ001
