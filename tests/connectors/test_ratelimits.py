"""The shared rate limiters on their own: each test runs on this process's memory and on
the machine's Redis, where two ``Limits`` on one namespace stand for two processes."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from connectors.ratelimits import Limits, Observed
from core.errors import Throttled
from tests.conftest import BROKER_NAMESPACE, clear_broker

Pair = tuple[Limits, Limits]


@pytest.fixture(params=["memory", "redis"])
def two(request: pytest.FixtureRequest) -> Iterator[Pair]:
    """Two processes' limits: the same store on Redis; in memory, one process's (twice)."""
    if request.param == "memory":
        limits = Limits()
        yield limits, limits
        return
    url = request.getfixturevalue("redis_url")
    namespace = f"{BROKER_NAMESPACE}:{uuid.uuid4().hex[:8]}"
    a, b = Limits(url, namespace=namespace), Limits(url, namespace=namespace)
    yield a, b
    a.close()
    b.close()
    clear_broker(url)


def refused(take: Callable[[], object]) -> Throttled:
    with pytest.raises(Throttled) as caught:
        take()
    return caught.value


def test_the_window_lets_through_its_limit_across_processes_then_says_when(two: Pair):
    a, b = (limits.window("v", limit=3, seconds=0.5, hold_seconds=5) for limits in two)
    first = a.take()
    b.take(2)
    wait = refused(b.take)
    assert wait.error_class == "rate_limited"
    assert wait.retry_after is not None and 5 < wait.retry_after <= 5.5  # in flight: held
    a.done(first[0])
    assert 0.4 < b.wait() <= 0.5  # answered: frees one window after its answer
    time.sleep(b.wait())
    assert len(b.take()) == 1


def test_a_slot_frees_a_window_after_its_answer_not_after_it_was_taken(two: Pair):
    a, b = (limits.window("v", limit=1, seconds=0.5, hold_seconds=5) for limits in two)
    with a.slot():
        time.sleep(0.4)  # a slow call
    assert b.wait() > 0.4
    time.sleep(0.55)
    assert b.wait() == 0


def test_slots_taken_together_are_as_many_as_are_free_and_unused_ones_come_back(two: Pair):
    a, b = (limits.window("v", limit=5, seconds=10, hold_seconds=5) for limits in two)
    b.take(2)
    slots = a.take(10, at_least=2)
    assert len(slots) == 3
    refused(lambda: b.take())
    with a.reserved(slots):
        with a.slot():
            pass  # used one of the reserved, took nothing more
    assert len(b.take(5)) == 2  # the two left over came back


def test_a_vendor_limit_lower_than_configured_holds_for_every_process(two: Pair):
    a, b = (limits.window("v", limit=10, seconds=10, hold_seconds=5) for limits in two)
    a.done(a.take()[0], Observed(remaining=1, limit=2))
    assert len(b.take(5)) == 1
    refused(b.take)


def test_calls_the_vendor_counted_and_we_did_not_fill_the_window(two: Pair):
    a, b = (limits.window("v", limit=10, seconds=10, hold_seconds=5) for limits in two)
    a.done(a.take()[0], Observed(remaining=2))  # another integration made 7 calls
    assert len(b.take(10)) == 2
    again = a.take  # the figure is not counted twice
    refused(again)


def test_a_429_blocks_every_process_for_its_retry_after(two: Pair):
    a, b = (limits.window("v", limit=100, seconds=10, hold_seconds=5) for limits in two)
    a.done(a.take()[0], Observed(blocked_for=0.5))
    assert 0.3 < refused(b.take).retry_after <= 0.5  # type: ignore[operator]
    time.sleep(0.55)
    assert b.take()


def test_a_slot_whose_holder_died_frees_after_hold_and_window(two: Pair):
    a, b = (limits.window("v", limit=1, seconds=0.2, hold_seconds=0.3) for limits in two)
    a.take()  # never answered
    assert 0.4 < b.wait() <= 0.5
    time.sleep(0.55)
    assert b.take()


def test_patience_waits_for_the_slot_instead_of_refusing(two: Pair):
    a, b = (limits.window("v", limit=1, seconds=0.3, hold_seconds=5) for limits in two)
    a.done(a.take()[0])
    started = time.monotonic()
    assert b.take(patience=1.0)
    assert time.monotonic() - started >= 0.25


def test_connections_are_capped_across_processes_and_free_on_return(two: Pair):
    a, b = (limits.connections("v", limit=2, ttl_seconds=30) for limits in two)
    a.patience = b.patience = 0.05
    with a.call(), b.call():
        full = refused(lambda: b.call().__enter__())
        assert (full.error_class, full.retry_after) == ("rate_limited", 0.05)
    with a.call(), b.call():
        pass


def test_an_allocation_below_its_reserve_stops_calls_until_a_reading_says_more(two: Pair):
    a, b = (limits.allowance("v", reserve=0.1, refresh_seconds=0.3) for limits in two)
    readings = iter([(100, 12), (100, 50)])
    asked: list[int] = []

    def read() -> tuple[int, int]:
        asked.append(1)
        return next(readings)

    a.admit(read)
    b.admit(read)  # the other process uses the reading: no second read
    assert len(asked) == 1
    stop = refused(lambda: b.admit(read))  # 12 - 2 spent = 10: the reserve
    assert stop.error_class == "api_reserve" and 0 < (stop.retry_after or 0) <= 1
    assert a.wait() > 0
    time.sleep(0.35)
    b.admit(read)  # a new reading: 50 left
    assert len(asked) == 2 and a.wait() == 0


def _never() -> tuple[int, int]:
    raise AssertionError("read only when a reading is older than the refresh")


def test_where_the_allocation_stands_is_the_last_reading_less_the_calls_since(two: Pair):
    a, b = (limits.allowance("v", reserve=0.1, refresh_seconds=3600) for limits in two)
    assert b.left() is None  # nothing read yet: nothing claimed
    a.record(15_000, 9_000)
    a.admit(_never)
    b.admit(_never)
    left = b.left()
    assert left is not None
    assert (left.limit, left.remaining, left.reserve) == (15_000, 8_998, 1_500)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == "ratelimit.reserve_reached"]


def test_reaching_the_reserve_is_warned_of_once_until_a_reading_clears_it(
        two: Pair, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger="privasync.ratelimits")
    a, b = (limits.allowance("v", reserve=0.1, refresh_seconds=3600) for limits in two)
    a.record(100, 11)
    b.admit(_never)  # 11 left: one more call
    refused(lambda: b.admit(_never))  # 10: the reserve
    assert a.wait() > 0 and b.wait() > 0  # held, seen by both processes, said once
    [said] = _warnings(caplog)
    assert said.levelname == "WARNING"
    assert {k: getattr(said, k) for k in ("limit", "allocation", "remaining", "reserve")} == {
        "limit": "v", "allocation": 100, "remaining": 10, "reserve": 10}
    a.record(100, 14)  # above the reserve, not clear of it: the same episode
    for _ in range(4):
        b.admit(_never)
    refused(lambda: b.admit(_never))
    assert len(_warnings(caplog)) == 1
    a.record(100, 50)  # clear of it: the episode ends
    assert "ratelimit.reserve_cleared" in caplog.messages
    a.record(100, 9)  # another: said again
    assert b.wait() > 0 and a.wait() > 0
    assert len(_warnings(caplog)) == 2
