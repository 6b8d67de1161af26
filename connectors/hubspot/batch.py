"""One raw batch POST to HubSpot, shared by the consent and record writers.

HubSpot answers a batch with 200, or 207 when some inputs were refused (the
caller maps those back); anything else fails the whole call through the error
table. A dropped connection or a bare 502/503 is retried inside the call.
"""

from __future__ import annotations

from typing import Any

import requests

from connectors.hubspot.errors import HUBSPOT
from connectors.transport import TimeoutSession, json_answer, send
from core.errors import TransientError


def post_batch(session: TimeoutSession, url: str, payload: dict[str, Any],
               what: str) -> dict[str, Any]:
    """The JSON object of a 200/207 answer. Raises DeliveryError; ``what`` names the call."""
    def read(response: requests.Response) -> dict[str, Any]:
        body = json_answer(response, TransientError(f"{what}: answer is not JSON",
                                                    error_class="hubspot_bad_response"))
        return body if isinstance(body, dict) else {}

    answer: dict[str, Any] = send(session, "POST", url, what=what, errors=HUBSPOT,
                                  accept=(200, 207), read=read, json=payload)
    return answer
