"""How the emulated processor delivers one callback (OpenDSR v2 §8.5).

§8.5: processors MUST try each callback at least once and SHOULD retry failed ones. Here:
up to three attempts, a retry after a 5xx or a network error, a short pause between them
(an emulator's choice; the spec names no schedule).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import requests

ATTEMPTS = 3


def call_back(url: str, body: bytes, headers: dict[str, str],
              note: Callable[[int | str], None]) -> int | str:
    """POST ``body`` to ``url``; ``note`` each attempt's outcome (HTTP status or the error's
    name); the last outcome."""
    outcome: int | str = "not sent"
    for attempt in range(ATTEMPTS):
        try:
            outcome = requests.post(url, data=body, headers=headers, timeout=10).status_code
        except requests.RequestException as exc:
            outcome = type(exc).__name__
        note(outcome)
        if isinstance(outcome, int) and outcome < 500:
            break
        time.sleep(0.05 * (attempt + 1))
    return outcome
