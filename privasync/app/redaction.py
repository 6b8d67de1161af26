"""A log processor that keeps personal data and secrets out of every log line.

privasync logs ids and hashes by design; this is the net under that rule, for our
own events and every library's alike (they pass through the same handler): an
e-mail address or a phone number anywhere in a value or an exception's text
becomes ``[email]`` / ``[phone]``, and the value of a key that names personal
data or a secret becomes ``[redacted]``, whatever it holds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping
from typing import Any

EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
# Eight to fifteen digits (E.164 allows fifteen) with the usual separators, not inside a
# word; dates, times, decimals and long ids are told apart below.
_PHONE = re.compile(r"(?<![\w.:/-])\+?\(?\d[\d ().-]{6,}\d(?![\w:/-])")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DECIMAL = re.compile(r"\d+\.\d+")

# Keys whose value is personal data or a secret, whatever it looks like.
PERSONAL_KEYS = frozenset({
    "email", "emails", "email_address", "to", "recipient",
    "old_email", "new_email", "phone", "mobile", "mobilephone", "first_name", "firstname",
    "last_name", "lastname", "full_name", "birthday", "date_of_birth", "value", "values",
    "field_value", "body", "payload", "form", "merges", "password", "secret", "token",
    "api_key", "access_token", "authorization", "session_id", "client_secret",
})
_SAFE_KEYS = frozenset({"timestamp", "level", "logger", "logger_name"})
REDACTED = "[redacted]"


def _phone(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = sum(c.isdigit() for c in text)
    if not 8 <= digits <= 15 or _DATE.match(text.lstrip("+(")) or _DECIMAL.fullmatch(text):
        return text
    if not text.startswith(("+", "(", "0")) and " " not in text and "-" not in text:
        return text  # a bare run of digits: a count, an epoch, an id
    return "[phone]"


def scrub(text: str) -> str:
    """``text`` with e-mail addresses and phone numbers replaced."""
    if "@" in text:
        text = EMAIL.sub("[email]", text)
    return _PHONE.sub(_phone, text)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, Mapping):
        return {k: REDACTED if str(k).lower() in PERSONAL_KEYS else _clean(v)
                for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return REDACTED
    return value


def redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: run last before rendering (after exceptions are formatted)."""
    for key in list(event):
        if key in _SAFE_KEYS or key.startswith("_"):
            continue
        event[key] = REDACTED if key.lower() in PERSONAL_KEYS else _clean(event[key])
    return event
