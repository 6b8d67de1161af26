"""The soak's Salesforce allocation (bench/soak.py ``--salesforce-allocation``) and what it
reports of the vendors' limits each window (bench/limits.py): calls made, allocation left,
privasync's gauges and the dispatches put off, read from what privasync really exports."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import generate_latest

from bench import limits, soak
from connectors.ratelimits import Limits
from privasync.emulators.salesforce import SalesforceEmulator
from workers.metrics import Metrics

NOWHERE = "http://127.0.0.1:1/metrics"  # nothing listens: no gauges read
STEADY = {"inbox_events": 0, "open_jobs": 0, "batch_p99_ms": 20.0, "propagation_p99_ms": 800.0,
          "rss_mb": {"api": 140.0}, "arriving_per_s": {"inbox_events": 1000.0, "open_jobs": 100.0}}


def test_the_allocation_defaults_to_an_enterprise_org_and_must_be_positive(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert soak.parse([]).salesforce_allocation == 200_000
    assert soak.parse(["--salesforce-allocation", "1500"]).salesforce_allocation == 1_500
    with pytest.raises(SystemExit) as refused:
        soak.parse(["--salesforce-allocation", "0"])
    assert refused.value.code == 2
    assert "--salesforce-allocation must be positive" in capsys.readouterr().err


def test_the_bench_reads_the_gauges_and_the_put_off_dispatches_privasync_exports() -> None:
    metrics, rate_limits = Metrics(), Limits()
    metrics.watch_allocations(rate_limits)
    rate_limits.allowance("salesforce", reserve=0.1, refresh_seconds=60).record(200_000, 150_000)
    metrics.throttled.labels("salesforce").inc(3)
    metrics.throttled.labels("hubspot").inc()

    seen = limits.read(generate_latest(metrics.registry).decode())

    assert seen[limits.PUT_OFF] == {"salesforce": 3, "hubspot": 1}
    assert {metric: seen[metric] for metric in limits.ALLOCATION} == {
        "privasync_vendor_allocation": {"salesforce": 200_000},
        "privasync_vendor_allocation_remaining": {"salesforce": 150_000},
        "privasync_vendor_allocation_reserve": {"salesforce": 20_000}}


def _window(n: int, left: int, put_off: int = 0) -> dict[str, Any]:
    return {"window": n, "salesforce": {"calls": 900, "calls_per_s": 3.0, "limit": 15_000,
                                        "left": left, "reserve": 1_500},
            "privasync_allocation": {"salesforce": {"limit": 15_000, "remaining": left - 4,
                                                    "reserve": 1_500}},
            "put_off": {"hubspot": 0, "salesforce": put_off}, "metrics_unread": []}


def test_a_window_counts_the_calls_and_dispatches_put_off_since_the_last() -> None:
    emulator = SalesforceEmulator(api_limit=15_000)
    before = limits.Counters(1_000, {"salesforce": 5.0})
    after = limits.Counters(1_900, {"salesforce": 17.0, "hubspot": 2.0}, ("worker2",))

    w = limits.window(before, after, 300.0, emulator, NOWHERE)

    assert w == {"salesforce": {"calls": 900, "calls_per_s": 3.0, "limit": 15_000,
                                "left": 13_100, "reserve": 1_500},
                 "privasync_allocation": {}, "put_off": {"hubspot": 2, "salesforce": 12},
                 "metrics_unread": ["worker2"]}


def test_the_line_names_calls_allocation_left_and_what_was_put_off() -> None:
    assert limits.line(_window(3, 1_404, put_off=57)) == (
        "salesforce 900 calls (3.0/s), 1,404 of 15,000 left (reserve 1,500; privasync's "
        "gauge 1,400); put off by rate limits: hubspot 0, salesforce 57")


def test_the_verdict_names_the_windows_that_ended_at_the_reserve() -> None:
    windows = [_window(1, 9_000), _window(2, 1_600), _window(3, 1_500, 40),
               _window(4, 1_498, 300)]
    check = soak.verdict([{**w, **STEADY} for w in windows],
                         {"inbox_events": 0, "open_jobs": 0}
                         )["checks"]["salesforce allocation above its reserve"]
    assert check == {"ok": False, "left_at_window_ends": [9_000, 1_600, 1_500, 1_498],
                     "reserve": 1_500, "at_reserve_in_windows": [3, 4],
                     "put_off_salesforce": [0, 0, 40, 300]}
    assert limits.check(windows[:2])["ok"]
