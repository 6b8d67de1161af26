"""What a private app's token may do, against what each configured feature needs.

``POST /oauth/v2/private-apps/get/access-token-info`` with ``{"tokenKey": token}`` answers
``{"userId", "hubId", "appId", "scopes": [...]}``; the token is the body, not a bearer
header (HubSpot's "Private apps" documentation; the call is in no OpenAPI file, and not in
hubspot-api-client 12, so this is raw HTTP).

The scopes per call are the ``security`` requirements of each operation in HubSpot's
OpenAPI documents (HubSpot/HubSpot-public-api-spec-collection): any one alternative of a
call suffices, all scopes of an alternative are needed. Notably v4 ``statuses/batch/write``
takes ``communication_preferences.statuses.batch.write`` and nothing else:
``communication_preferences.read_write`` does not open it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import requests

from connectors.transport import EVERY_STATUS, PLAIN, send
from core.errors import AuthError

TOKEN_INFO_PATH = "/oauth/v2/private-apps/get/access-token-info"  # noqa: S105 - a path


@dataclass(frozen=True)
class Need:
    """One call a feature makes, and the scopes that open it (alternatives, first the one
    to name when none is granted)."""

    feature: str
    call: str
    alternatives: tuple[frozenset[str], ...]

    def met_by(self, granted: set[str]) -> bool:
        return any(alt <= granted for alt in self.alternatives)

    @property
    def named(self) -> frozenset[str]:
        return self.alternatives[0]


def _one(*scopes: str) -> tuple[frozenset[str], ...]:
    return tuple(frozenset({s}) for s in scopes)


_CONTACTS_READ = _one("crm.objects.contacts.read")
_CONTACTS_WRITE = _one("crm.objects.contacts.write")
# Contacts v3 (PublicApiSpecs/CRM/Contacts/Rollouts/424/v3/contacts.json): batch/read and
# search take contacts.read; batch/update, gdpr-delete and merge take contacts.write.
# Properties v3 (.../CRM/Properties/Rollouts/145899/v3/properties.json): GET properties
# takes any of 100 scopes, contacts.read among them (named here: the others need it too).
READS = (Need("contact look-ups, read-backs and export", "POST /crm/v3/objects/contacts/"
              "batch/read", _CONTACTS_READ),
         Need("export", "GET /crm/v3/properties/contacts",
              _one("crm.objects.contacts.read", "crm.schemas.contacts.read",
                   "crm.objects.contacts.write")))
ERASURE = (Need("erasure", "POST /crm/v3/objects/contacts/gdpr-delete", _CONTACTS_WRITE),)
RECORDS = (Need("record fields", "POST /crm/v3/objects/contacts/batch/update",
                _CONTACTS_WRITE),)
# Subscriptions v4 (.../Communication Preferences/Subscriptions/Rollouts/176901/v4/
# subscriptions.json) and v3 (.../147906/v3/subscriptions.json).
CONSENT = (Need("consent writes", "POST /communication-preferences/v4/statuses/batch/write",
                _one("communication_preferences.statuses.batch.write")),
           Need("subscription check", "GET /communication-preferences/v3/definitions",
                _one("communication_preferences.read", "communication_preferences.read_write")))


def granted_scopes(session: requests.Session, base_url: str, token: str) -> set[str] | None:
    """The token's scopes, or None when HubSpot does not say (not a private app's token).
    Raises TransientError when HubSpot cannot be reached."""
    what = "hubspot token info"
    response = send(session, "POST", base_url + TOKEN_INFO_PATH, what=what, errors=PLAIN,
                    accept=EVERY_STATUS, blips=False, json={"tokenKey": token},
                    headers={"Authorization": None})
    if response.status_code != 200:
        return None
    try:
        scopes = response.json().get("scopes")
    except (ValueError, AttributeError):
        return None
    return {str(s) for s in scopes} if isinstance(scopes, list) else None


def lacking(needs: Iterable[Need], granted: set[str]) -> dict[str, list[str]]:
    """Missing scope -> the features that need it, for every need no alternative meets."""
    missing: dict[str, list[str]] = {}
    for need in needs:
        if not need.met_by(granted):
            for scope in sorted(need.named):
                features = missing.setdefault(scope, [])
                if need.feature not in features:
                    features.append(need.feature)
    return missing


def check_scopes(session: requests.Session, base_url: str, token: str,
                 needs: Iterable[Need]) -> None:
    """Raise AuthError naming each scope the token lacks and what needs it; nothing when
    HubSpot does not tell the token's scopes."""
    granted = granted_scopes(session, base_url, token)
    if granted is None:
        return
    missing = lacking(needs, granted)
    if missing:
        named = "; ".join(f"{scope} (for {', '.join(features)})"
                          for scope, features in sorted(missing.items()))
        raise AuthError(f"hubspot token lacks scope(s) {named}", error_class="hubspot_scopes")
