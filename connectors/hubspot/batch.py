"""One raw batch POST to HubSpot, shared by the consent and record writers.

HubSpot answers a batch with 200, or 207 when some inputs were refused (the
caller maps those back); anything else fails the whole call through the error
table. A dropped connection or a bare 502/503 is retried inside the call.
"""

from __future__ import annotations

from typing import Any

import requests

from connectors.hubspot.errors import http_error
from connectors.transport import TimeoutSession, blip_retry, error_for_network
from core.errors import TransientError


@blip_retry
def _post_once(session: TimeoutSession, url: str, payload: dict[str, Any],
               what: str) -> dict[str, Any]:
    response = session.post(url, json=payload)
    if response.status_code not in (200, 207):
        raise http_error(response.status_code, response.headers, what, response.content)
    try:
        body = response.json()
    except ValueError:
        raise TransientError(f"{what}: answer is not JSON",
                             error_class="hubspot_bad_response") from None
    return body if isinstance(body, dict) else {}


def post_batch(session: TimeoutSession, url: str, payload: dict[str, Any],
               what: str) -> dict[str, Any]:
    """The JSON object of a 200/207 answer. Raises DeliveryError; ``what`` names the call."""
    try:
        return _post_once(session, url, payload, what)
    except requests.RequestException as exc:
        raise error_for_network(exc, what) from exc
