"""The vendors' daily allocations in /metrics: what the allowance last read, less the calls
counted since, and the reserve; on Redis, a reading one process took shows in another's."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from connectors.ratelimits import Limits
from tests.conftest import BROKER_NAMESPACE, clear_broker
from workers.metrics import Metrics

GAUGES = ("privasync_vendor_allocation", "privasync_vendor_allocation_remaining",
          "privasync_vendor_allocation_reserve")


def scraped(metrics: Metrics) -> dict[tuple[str, str], float]:
    """(metric, destination) -> value of the allocation gauges, as Prometheus reads them."""
    text = generate_latest(metrics.registry).decode()
    return {(s.name, s.labels["destination"]): s.value
            for family in text_string_to_metric_families(text) if family.name in GAUGES
            for s in family.samples}


def _never() -> tuple[int, int]:
    raise AssertionError("no reading is due")


def salesforce(limits: Limits):  # type: ignore[no-untyped-def]
    return limits.allowance("salesforce", reserve=0.1, refresh_seconds=3600)


def test_a_reading_shows_as_the_allocation_what_is_left_and_the_reserve():
    limits, metrics = Limits(), Metrics()
    metrics.watch_allocations(limits)
    allowance = salesforce(limits)
    assert scraped(metrics) == {}  # built, never read: no figure rather than a zero
    allowance.record(15_000, 9_000)
    for _ in range(3):
        allowance.admit(_never)
    assert scraped(metrics) == {
        ("privasync_vendor_allocation", "salesforce"): 15_000,
        ("privasync_vendor_allocation_remaining", "salesforce"): 8_997,
        ("privasync_vendor_allocation_reserve", "salesforce"): 1_500}


@pytest.fixture
def namespace(redis_url: str) -> Iterator[str]:
    yield f"{BROKER_NAMESPACE}:{uuid.uuid4().hex[:8]}"
    clear_broker(redis_url)


def test_on_redis_the_api_shows_what_a_worker_read_and_spent(redis_url: str, namespace: str):
    worker, api = Limits(redis_url, namespace=namespace), Limits(redis_url, namespace=namespace)
    metrics = Metrics()
    metrics.watch_allocations(api)
    salesforce(api)  # the API builds the connection too, and never calls Salesforce
    spending = salesforce(worker)
    spending.record(100_000, 10_050)
    for _ in range(50):
        spending.admit(_never)
    assert scraped(metrics) == {
        ("privasync_vendor_allocation", "salesforce"): 100_000,
        ("privasync_vendor_allocation_remaining", "salesforce"): 10_000,
        ("privasync_vendor_allocation_reserve", "salesforce"): 10_000}
    worker.close()
    api.close()


def test_an_unreachable_store_leaves_the_figures_out_and_the_scrape_whole():
    limits, metrics = Limits("redis://127.0.0.1:1/0"), Metrics()
    metrics.watch_allocations(limits)
    salesforce(limits)
    assert scraped(metrics) == {}
    assert b"privasync_rate_limited" in generate_latest(metrics.registry)
