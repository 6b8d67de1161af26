"""HubSpot webhook signatures (VENDOR_APIS.md A1), checked with the stdlib only.

v3 is keyed (HMAC-SHA256) and timestamped, unlike v1/v2, so it is the only one
trusted by default. ``X-HubSpot-Signature-Version`` describes the legacy
``X-HubSpot-Signature`` header that HubSpot still sends alongside (``v1`` on CRM
webhooks), so it is not what decides: a request carrying a v3 signature is
judged by it alone. Only where the operator allows legacy signatures
(an app that still sends v1/v2 only) is a request without v3 checked against
its v1 (SHA-256 of secret + body) or v2 (secret + method + URI + body) hash:
neither has a timestamp, so a captured delivery stays valid for ever, and only
the inbox's dedupe of identical bytes stands between it and a replay.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from core.errors import Unauthenticated
from core.model import require_aware

MAX_SKEW = timedelta(minutes=5)
SIGNATURE_HEADER = "x-hubspot-signature-v3"
TIMESTAMP_HEADER = "x-hubspot-request-timestamp"
LEGACY_HEADER = "x-hubspot-signature"
VERSION_HEADER = "x-hubspot-signature-version"
LEGACY_VERSIONS = ("v1", "v2")

# HubSpot hashes the URI with these escapes decoded; every other escape stays as sent.
_DECODED = {"%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
            "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";"}
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


def decode_uri(url: str) -> str:
    """The request URI as HubSpot hashed it: only the listed escapes decoded."""
    return _ESCAPE.sub(lambda m: _DECODED.get(m[0].upper(), m[0]), url)


def expected_signature(secret: str, method: str, url: str, body: bytes, timestamp: str) -> str:
    """base64(HMAC-SHA256(secret, method + uri + raw body + timestamp))."""
    source = method.upper().encode() + decode_uri(url).encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), source, hashlib.sha256).digest()).decode()


def _timestamp(value: str, now: datetime) -> None:
    """Refuse a timestamp that is not ms since the epoch within five minutes of ``now``."""
    if not value.isascii() or not value.isdigit():
        raise Unauthenticated("X-HubSpot-Request-Timestamp is not an integer")
    try:
        sent = datetime.fromtimestamp(int(value) / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        raise Unauthenticated("X-HubSpot-Request-Timestamp is out of range") from None
    if sent < now - MAX_SKEW:
        raise Unauthenticated("HubSpot request timestamp is more than 5 minutes old")
    if sent > now + MAX_SKEW:
        raise Unauthenticated("HubSpot request timestamp is more than 5 minutes in the future")


def verify_v3(*, secret: str | None, method: str, url: str, body: bytes,
              headers: Mapping[str, str], now: datetime) -> None:
    """Return if the request was signed by HubSpot with ``secret``; raise Unauthenticated.

    ``url`` is the full URL HubSpot called (scheme, host, path, query). Reasons
    name headers, never the secret, the signature or the body.
    """
    require_aware(now, "now")
    if not secret:
        raise Unauthenticated("no HubSpot client secret is configured")
    lowered = {k.lower(): v for k, v in headers.items()}
    signature, stamp = lowered.get(SIGNATURE_HEADER), lowered.get(TIMESTAMP_HEADER)
    if not signature:
        raise Unauthenticated("missing X-HubSpot-Signature-v3 header (only v3 is accepted)")
    if not stamp:
        raise Unauthenticated("missing X-HubSpot-Request-Timestamp header")
    _timestamp(stamp.strip(), now)
    expected = expected_signature(secret, method, url, body, stamp.strip())
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        raise Unauthenticated("HubSpot signature v3 does not match")


def expected_legacy(secret: str, version: str, method: str, url: str, body: bytes) -> str:
    """hex(SHA-256(secret + body)) for v1; hex(SHA-256(secret + method + URI + body)) for v2."""
    source = secret.encode() + body if version == "v1" else (
        secret.encode() + method.upper().encode() + url.encode() + body)
    return hashlib.sha256(source).hexdigest()


def verify(*, secret: str | None, method: str, url: str, body: bytes,
           headers: Mapping[str, str], now: datetime, allow_legacy: bool = False) -> None:
    """``verify_v3``; with ``allow_legacy``, a request carrying no v3 signature may pass by
    its v1/v2 one instead. Raises Unauthenticated."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if not allow_legacy or SIGNATURE_HEADER in lowered:
        verify_v3(secret=secret, method=method, url=url, body=body, headers=headers, now=now)
        return
    if not secret:
        raise Unauthenticated("no HubSpot client secret is configured")
    version = lowered.get(VERSION_HEADER, "").strip().lower()
    signature = lowered.get(LEGACY_HEADER, "").strip().lower()
    if version not in LEGACY_VERSIONS or not signature:
        raise Unauthenticated("missing X-HubSpot-Signature-v3 header, and no v1 or v2 "
                              "signature either")
    expected = expected_legacy(secret, version, method, url, body)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise Unauthenticated(f"HubSpot signature {version} does not match")
