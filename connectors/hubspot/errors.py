"""HubSpot's HTTP failures in privasync's error tree, for the SDK and raw calls alike.

HubSpot answers a 429 without Retry-After but with its rolling window in
``X-HubSpot-RateLimit-Interval-Milliseconds``: waiting one window is the hint.
Two refusals are read from the body (the spec's ``Error``: category, ``errors[]`` with
``code`` and ``context``), so that the message says what to change: a 403 of category
``MISSING_SCOPES`` names the scopes (``context.requiredGranularScopes`` as HubSpot answers,
or the spec example's ``missingScopes``), and a 400 refusing properties names them
(codes ``PROPERTY_DOESNT_EXIST``, ``READ_ONLY_VALUE``, ``context.propertyName``). Only
HubSpot's words and property names are repeated, never a message or a value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.transport import ErrorTable
from core.errors import AuthError, DeliveryError, PermanentError

DEFAULT_WINDOW_SECONDS = 10.0
_SCOPE_KEYS = ("requiredGranularScopes", "missingScopes")
_PROPERTY_CODES = frozenset({"PROPERTY_DOESNT_EXIST", "READ_ONLY_VALUE"})


def _quiet_429(headers: Mapping[str, str]) -> float:
    """A 429 without Retry-After: wait one of HubSpot's windows."""
    interval = headers.get("x-hubspot-ratelimit-interval-milliseconds", "")
    return int(interval) / 1000 if interval.isdigit() else DEFAULT_WINDOW_SECONDS


def _details(error: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [d for d in error.get("errors") or [] if isinstance(d, dict)]


def _context_values(error: Mapping[str, Any], keys: tuple[str, ...]) -> list[str]:
    """Every string under ``keys`` in the error's context or its details' contexts."""
    contexts = [error.get("context")] + [d.get("context") for d in _details(error)]
    return sorted({str(v) for c in contexts if isinstance(c, dict)
                   for k in keys for v in c.get(k) or []})


def refusal(status: int, error: dict[str, Any], what: str) -> DeliveryError | None:
    """The error a readable HubSpot refusal calls for, or None to go by the status."""
    if status == 403 and error.get("category") == "MISSING_SCOPES":
        scopes = _context_values(error, _SCOPE_KEYS)
        return AuthError(f"{what}: token lacks scope(s) {', '.join(scopes) or '(not named)'}",
                         error_class="hubspot_scopes")
    codes = {str(d.get("code")) for d in _details(error)} & _PROPERTY_CODES
    if status == 400 and codes:
        names = _context_values(error, ("propertyName",))
        return PermanentError(f"{what}: HubSpot refused contact propert(ies) "
                              f"{', '.join(names) or '(not named)'} ({', '.join(sorted(codes))})",
                              error_class="hubspot_properties")
    return None


HUBSPOT = ErrorTable(quiet_429=_quiet_429, refusal=refusal)


def retry_after(status: int, headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait: Retry-After if sent, else (for a 429) HubSpot's window."""
    return HUBSPOT.retry_after(status, headers)

