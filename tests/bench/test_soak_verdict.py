"""The soak's verdict (bench/soak.py): what counts as a backlog that keeps up, a flat p99
and flat memory, on windows as the soak records them."""

from __future__ import annotations

from typing import Any

from bench.soak import verdict

DRAINED = {"inbox_events": 0, "open_jobs": 0}


def _window(n: int, *, inbox: int = 0, jobs: int = 0, batch_p99: float = 20.0,
            propagation_p99: float = 800.0, rss: float = 140.0) -> dict[str, Any]:
    """1,000 events and 100 jobs arriving a second: 5,000 and 500 count as near zero."""
    return {"window": n, "inbox_events": inbox, "open_jobs": jobs, "batch_p99_ms": batch_p99,
            "propagation_p99_ms": propagation_p99, "rss_mb": {"api": rss, "worker1": 150.0},
            "arriving_per_s": {"inbox_events": 1000.0, "open_jobs": 100.0},
            "salesforce": {"left": 150_000, "reserve": 20_000}, "put_off": {}}


def _failed(windows: list[dict[str, Any]], drained: dict[str, Any] = DRAINED) -> set[str]:
    return {name for name, check in verdict(windows, drained)["checks"].items()
            if not check["ok"]}


def test_a_steady_run_passes_with_backlogs_that_move_within_five_seconds_of_arrivals() -> None:
    windows = [_window(1, inbox=300, jobs=300), _window(2, inbox=4000, jobs=450),
               _window(3, inbox=1200, jobs=200), _window(4, inbox=3000, jobs=480)]
    assert verdict(windows, DRAINED)["pass"]


def test_an_inbox_growing_window_over_window_fails_even_if_it_drains_afterwards() -> None:
    windows = [_window(n, inbox=10_000 * n) for n in range(1, 5)]
    assert _failed(windows) == {"inbox_events held"}


def test_a_backlog_left_after_the_drain_fails() -> None:
    windows = [_window(n) for n in range(1, 4)]
    assert _failed(windows, {"inbox_events": 0, "open_jobs": 900}) == {"open_jobs drained"}


def test_a_p99_more_than_a_fifth_above_the_first_windows_fails_and_a_faster_one_passes() -> None:
    windows = [_window(1, propagation_p99=1000.0, batch_p99=50.0),
               _window(2, propagation_p99=1300.0, batch_p99=20.0)]
    assert _failed(windows) == {"propagation_p99_ms flat"}


def test_a_process_growing_by_a_tenth_after_the_first_window_fails() -> None:
    windows = [_window(1, rss=140.0), _window(2, rss=150.0), _window(3, rss=154.0)]
    assert _failed(windows) == {"rss growth < 10 %"}
