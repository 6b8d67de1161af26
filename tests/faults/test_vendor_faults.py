"""Each vendor failing for a while, then recovering: its connections reset, then 429
with Retry-After, 500, 503 and answers slower than privasync's timeout, in turn."""

from __future__ import annotations

import time

import pytest

from privasync.emulators.http import Fault
from tests.faults.harness import Deployment, assert_end_state, wait_until

RESET_SECONDS = 2.0
SLOWER_THAN_TIMEOUT = 3.0  # the fault suite's vendor timeout is 2 s


def _faults() -> list[Fault]:
    body = {"message": "injected"}
    return 2 * [Fault(429, body, {"Retry-After": "1"}), Fault(500, body), Fault(503, body),
                Fault(504, body, delay_seconds=SLOWER_THAN_TIMEOUT)]


@pytest.mark.parametrize("vendor", ["hubspot", "salesforce", "mailchimp", "partner"])
def test_a_vendor_failing_then_recovering(dep: Deployment, vendor: str) -> None:
    people = dep.seed(6, 6, 3)
    emulator = getattr(dep.emu, vendor)
    dep.vendor[vendor].cut()  # every connection to it reset, new ones refused
    dep.unsubscribe(people)
    time.sleep(RESET_SECONDS)
    emulator.inject(*_faults())
    dep.vendor[vendor].restore()
    wait_until(f"{vendor} served every injected fault", lambda: emulator.faults_pending == 0,
               timeout=60)
    refused = dep.vendor[vendor].refused
    assert_end_state(dep, people, f"{vendor}: resets, 429, 500, 503, timeouts",
                     time.monotonic())
    assert refused > 0, f"nothing tried {vendor} while its connections were reset"
