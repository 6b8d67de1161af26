"""The delay before a failed job runs again: exponential from the minimum, up to the minimum
of jitter on top, capped at the maximum, never sooner than the vendor asked."""

from __future__ import annotations

import random

import pytest

from workers.retries import backoff


@pytest.mark.parametrize("attempts", [0, 1, 2, 3, 4, 5])
def test_the_delay_doubles_per_attempt_with_up_to_the_minimum_of_jitter(attempts: int) -> None:
    delay = backoff(2.0, 1000.0)
    base = 2.0 * 2 ** (max(attempts, 1) - 1)
    seen = [delay(attempts, None) for _ in range(200)]
    assert all(base <= d <= base + 2.0 for d in seen)
    assert len(set(seen)) > 1  # jittered


def test_the_delay_is_capped_even_when_the_exponent_overflows() -> None:
    delay = backoff(5.0, 60.0)
    assert delay(8, None) == 60.0
    assert delay(5000, None) == 60.0


def test_a_vendors_retry_after_wins_when_it_is_longer() -> None:
    delay = backoff(1.0, 10.0)
    assert delay(1, 900.0) == 900.0
    assert 1.0 <= delay(1, 0.5) <= 2.0


def test_the_same_random_draw_gives_the_same_delay_as_tenacitys_formula() -> None:
    delay = backoff(3.0, 100.0)
    random.seed(7)
    got = [delay(n, None) for n in range(1, 7)]
    random.seed(7)
    expected = [min(3.0 * 2 ** (n - 1) + random.uniform(0, 3.0), 100.0) for n in range(1, 7)]
    assert got == expected
