"""What the soak (bench/soak.py) reads of the vendors' limits at a window's end, so that a
backlog that grows names its cause: the Salesforce calls privasync made and the daily
allocation left (the Salesforce emulator's own counters), what privasync's /metrics says
of that allocation (``privasync_vendor_allocation*``, from the API process: the readings
are shared through Redis), and the dispatches a rate limit put off
(``privasync_rate_limited_total``, counted in each worker, which serves its own /metrics).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from connectors.salesforce.plugin import SalesforceSettings
from privasync.emulators.salesforce import SalesforceEmulator

ALLOCATION = {"privasync_vendor_allocation": "limit",
              "privasync_vendor_allocation_remaining": "remaining",
              "privasync_vendor_allocation_reserve": "reserve"}
PUT_OFF = "privasync_rate_limited_total"
RESERVE = SalesforceSettings().api_reserve  # the bench leaves PRIVASYNC_SALESFORCE__API_RESERVE


def scrape(url: str) -> dict[str, dict[str, float]] | None:
    """``read`` of one process's /metrics; None when it cannot be read (it stopped, say)."""
    try:
        answer = requests.get(url, timeout=5)
        answer.raise_for_status()
    except requests.RequestException:
        return None
    return read(answer.text)


def read(text: str) -> dict[str, dict[str, float]]:
    """``{sample name: {destination: value}}`` of the destination-labelled samples of a
    /metrics text (summed over any other label)."""
    found: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if "destination" in sample.labels:
                into = found.setdefault(sample.name, {})
                destination = sample.labels["destination"]
                into[destination] = into.get(destination, 0.0) + sample.value
    return found


@dataclass(frozen=True)
class Counters:
    """Cumulative figures at one moment: the emulator's count of Salesforce calls, and the
    dispatches put off by rate limits (summed over the workers), by destination."""

    salesforce_calls: int
    put_off: dict[str, float] = field(default_factory=dict)
    unread: tuple[str, ...] = ()  # processes whose /metrics did not answer


def counters(salesforce: SalesforceEmulator, metrics: Mapping[str, str]) -> Counters:
    put_off: dict[str, float] = {}
    unread: list[str] = []
    for name, url in metrics.items():
        if name == "api":
            continue  # the API dispatches nothing
        seen = scrape(url)
        if seen is None:
            unread.append(name)
            continue
        for destination, n in seen.get(PUT_OFF, {}).items():
            put_off[destination] = put_off.get(destination, 0.0) + n
    return Counters(salesforce.api_used, put_off, tuple(unread))


def window(before: Counters, after: Counters, seconds: float, salesforce: SalesforceEmulator,
           api_metrics: str) -> dict[str, Any]:
    """The window's figures: Salesforce calls made and the allocation left (the emulator's;
    the reserve is privasync's default share of it), what privasync's gauges say, and the
    dispatches put off, by destination."""
    calls = after.salesforce_calls - before.salesforce_calls
    seen = scrape(api_metrics) or {}
    gauges: dict[str, dict[str, int]] = {}
    for metric, key in ALLOCATION.items():
        for destination, value in seen.get(metric, {}).items():
            gauges.setdefault(destination, {})[key] = round(value)
    return {"salesforce": {"calls": calls, "calls_per_s": round(calls / seconds, 2),
                           "limit": salesforce.api_limit,
                           "left": salesforce.api_limit - after.salesforce_calls,
                           "reserve": round(RESERVE * salesforce.api_limit)},
            "privasync_allocation": gauges,
            "put_off": {d: int(n - before.put_off.get(d, 0.0))
                        for d, n in sorted(after.put_off.items())},
            "metrics_unread": list(after.unread)}


def line(w: dict[str, Any]) -> str:
    """``salesforce 1,234 calls (4.1/s), 9,000 of 15,000 left (reserve 1,500; privasync's
    gauge 9,010); put off by rate limits: hubspot 0, salesforce 12``."""
    sf = w["salesforce"]
    gauge = w["privasync_allocation"].get("salesforce", {}).get("remaining")
    put_off = ", ".join(f"{d} {n:,}" for d, n in w["put_off"].items()) or "none"
    unread = f" (no /metrics from {', '.join(w['metrics_unread'])})" \
        if w["metrics_unread"] else ""
    return (f"salesforce {sf['calls']:,} calls ({sf['calls_per_s']:.1f}/s), {sf['left']:,} of "
            f"{sf['limit']:,} left (reserve {sf['reserve']:,}; privasync's gauge "
            f"{'-' if gauge is None else f'{gauge:,}'}); put off by rate limits: "
            f"{put_off}{unread}")


def check(windows: list[dict[str, Any]]) -> dict[str, Any]:
    """The verdict's check: at every window's end the Salesforce allocation was above the
    reserve, so no Salesforce job waited for it."""
    left = [w["salesforce"]["left"] for w in windows]
    reserve = windows[-1]["salesforce"]["reserve"] if windows else 0
    at = [w["window"] for w in windows if w["salesforce"]["left"] <= w["salesforce"]["reserve"]]
    return {"ok": not at, "left_at_window_ends": left, "reserve": reserve,
            "at_reserve_in_windows": at,
            "put_off_salesforce": [w["put_off"].get("salesforce", 0) for w in windows]}
