"""Each vendor failing for a while, then recovering: its connections reset, then 429
with Retry-After, 500, 503 and answers slower than privasync's timeout, in turn."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from core.db import jobs
from privasync.emulators.http import Fault
from tests.faults.harness import (
    VENDOR_TIMEOUT_SECONDS,
    Deployment,
    assert_end_state,
    wait_until,
)

# The emulator answers no sooner than this, so the call has timed out by then, however
# slowly the machine runs. (A partner's timeout is its connector's 10 s: there the slow
# answer is a late 504, not a timeout.)
SLOWER_THAN_TIMEOUT = 2 * VENDOR_TIMEOUT_SECONDS


def _faults() -> list[Fault]:
    body = {"message": "injected"}
    return 2 * [Fault(429, body, {"Retry-After": "1"}), Fault(500, body), Fault(503, body),
                Fault(504, body, delay_seconds=SLOWER_THAN_TIMEOUT)]


def _failed_on_resets(dep: Deployment, vendor: str) -> bool:
    """A job for ``vendor`` had an attempt fail on the resets (not only a blip retried
    within one call): the worker's own retries, not luck, carry it past them."""
    with dep.engine.connect() as conn:
        return bool(conn.execute(sa.select(sa.func.count()).select_from(jobs).where(
            jobs.c.destination.startswith(vendor),
            jobs.c.last_error_class == "network")).scalar_one())


@pytest.mark.parametrize("vendor", ["hubspot", "salesforce", "mailchimp", "partner"])
def test_a_vendor_failing_then_recovering(dep: Deployment, vendor: str) -> None:
    people = dep.seed(6, 6, 3)
    emulator = getattr(dep.emu, vendor)
    dep.vendor[vendor].cut()  # every connection to it reset, new ones refused
    dep.unsubscribe(people)
    wait_until(f"a {vendor} job failed on the resets", lambda: _failed_on_resets(dep, vendor),
               timeout=30)
    emulator.inject(*_faults())
    dep.vendor[vendor].restore()
    wait_until(f"{vendor} served every injected fault", lambda: emulator.faults_pending == 0,
               timeout=60)
    refused = dep.vendor[vendor].refused
    assert_end_state(dep, people, f"{vendor}: resets, 429, 500, 503, timeouts",
                     time.monotonic())
    assert refused > 0, f"nothing tried {vendor} while its connections were reset"
