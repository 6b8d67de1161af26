"""Art. 12(3) deadlines in calendar months, checked against an independent statement."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from core.deadlines import add_months
from core.subject_requests import due_at


def month_later(start: datetime, months: int) -> datetime:
    """The rule as the regulation words it, by a different road: walk to the first of the
    target month, then take the same day, or that month's last day if it has fewer."""
    first = date(start.year, start.month, 1)
    for _ in range(months):
        first = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    last_day = calendar.monthrange(first.year, first.month)[1]
    return start.replace(year=first.year, month=first.month, day=min(start.day, last_day))


# Hypothesis takes naive bounds; the zone comes from ``timezones``.
moments = st.datetimes(min_value=datetime(2000, 1, 1),  # noqa: DTZ001
                       max_value=datetime(2099, 12, 31),  # noqa: DTZ001
                       timezones=st.just(UTC))


def test_month_ends_and_leap_years():
    assert add_months(datetime(2026, 1, 31, 9, tzinfo=UTC), 1) == datetime(2026, 2, 28, 9,
                                                                          tzinfo=UTC)
    assert add_months(datetime(2028, 1, 31, 9, tzinfo=UTC), 1) == datetime(2028, 2, 29, 9,
                                                                          tzinfo=UTC)
    assert add_months(datetime(2026, 3, 31, tzinfo=UTC), 1) == datetime(2026, 4, 30, tzinfo=UTC)
    assert add_months(datetime(2026, 12, 15, tzinfo=UTC), 1) == datetime(2027, 1, 15, tzinfo=UTC)
    # An extension counts in months from receipt, not from the first due date.
    assert due_at(datetime(2026, 1, 31, tzinfo=UTC), extended_months=2) == \
        datetime(2026, 4, 30, tzinfo=UTC)


@given(moments, st.integers(min_value=0, max_value=36))
def test_adding_months_agrees_with_the_rule_stated_apart(start: datetime, months: int):
    assert add_months(start, months) == month_later(start, months)


@given(moments, st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=90)),
       st.integers(min_value=0, max_value=2))
def test_a_pause_moves_the_deadline_by_exactly_its_length(start: datetime, paused: timedelta,
                                                          extended: int):
    due = due_at(start, paused=paused, extended_months=extended)
    assert due == month_later(start, 1 + extended) + paused
    assert due >= start + timedelta(days=28) + paused  # never shorter than February
