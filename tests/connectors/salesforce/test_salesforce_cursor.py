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


@pytest.mark.parametrize("text", [
    "",
    "not json",
    "[]",
    "{}",
    '{"updated_until": "2024-01-02T10:00:00+00:00"}',
    '{"updated_until": "yesterday", "deleted_until": "2024-01-02T10:00:00+00:00"}',
    '{"updated_until": 5, "deleted_until": "2024-01-02T10:00:00+00:00"}',
    '{"updated_until": "2024-01-02T10:00:00", "deleted_until": "2024-01-02T10:00:00+00:00"}',
])
def test_from_json_refuses_garbage_and_naive_datetimes(text):
    with pytest.raises(BadInput):
        SalesforceCursor.from_json(text)


def test_a_cursor_cannot_be_built_from_a_naive_datetime():
    with pytest.raises(BadInput):
        SalesforceCursor(datetime(2024, 1, 2), datetime(2024, 1, 2, tzinfo=UTC))  # noqa: DTZ001
