"""What a private app's token may do: HubSpot's token-info endpoint lists its scopes.

``POST /oauth/v2/private-apps/get/access-token-info`` with ``{"tokenKey": token}``
answers ``{"userId", "hubId", "appId", "scopes": [...]}``; the token is the body,
not a bearer header.
"""

from __future__ import annotations

import requests

from connectors.transport import error_for_network
from core.errors import AuthError

TOKEN_INFO_PATH = "/oauth/v2/private-apps/get/access-token-info"  # noqa: S105 - a path

# Each need, met by any one of its scopes: contacts are searched, read, updated and
# GDPR-deleted; consent goes out through communication preferences (v4 batch, v3).
REQUIRED_SCOPES: tuple[tuple[str, ...], ...] = (
    ("crm.objects.contacts.read",),
    ("crm.objects.contacts.write",),
    ("communication_preferences.statuses.batch.write", "communication_preferences.read_write",
     "communication_preferences.write"),
)


def granted_scopes(session: requests.Session, base_url: str, token: str) -> set[str] | None:
    """The token's scopes, or None when HubSpot does not say (not a private app's token).
    Raises TransientError when HubSpot cannot be reached."""
    what = "hubspot token info"
    try:
        response = session.post(base_url + TOKEN_INFO_PATH, json={"tokenKey": token},
                                headers={"Authorization": None})
    except requests.RequestException as exc:
        raise error_for_network(exc, what) from exc
    if response.status_code != 200:
        return None
    try:
        scopes = response.json().get("scopes")
    except (ValueError, AttributeError):
        return None
    return {str(s) for s in scopes} if isinstance(scopes, list) else None


def check_scopes(session: requests.Session, base_url: str, token: str) -> None:
    """Raise AuthError naming each scope the token lacks (the first alternative of each)."""
    granted = granted_scopes(session, base_url, token)
    if granted is None:
        return
    missing = [need[0] for need in REQUIRED_SCOPES if not granted.intersection(need)]
    if missing:
        raise AuthError(f"hubspot token lacks scope(s) {', '.join(missing)}",
                        error_class="hubspot_scopes")
