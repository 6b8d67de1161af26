"""What a notifier is given and what it hands back.

A ``Notice`` holds only what the message needs: the address it goes to, the
request's reference, what happened and when, the sender's name and, for a
refusal, the admin's reason. Nothing else about the person is ever passed in,
so nothing else can leak into a message, a log line or an error. Validation
errors never repeat the address.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from connectors.notify.texts import compose, when_text
from core.errors import BadInput
from core.model import require_aware

Kind = Literal["erasure", "rejection", "extension"]
Language = Literal["en", "nl"]

KINDS: frozenset[str] = frozenset({"erasure", "rejection", "extension"})
WITH_REASON: frozenset[str] = frozenset({"rejection", "extension"})
LANGUAGES: frozenset[str] = frozenset({"en", "nl"})
MAX_REASON = 2000
_FORBIDDEN_IN_ADDRESS = frozenset(" \t\r\n,;<>\"()[]\\")


def plain_address(to: str) -> bool:
    """One bare ``local@domain``: no display name, no list, nothing that splits a header."""
    local, at, domain = to.rpartition("@")
    return bool(at and local and "." in domain and not domain.startswith(".")
                and not _FORBIDDEN_IN_ADDRESS.intersection(to)
                and all(ch.isprintable() for ch in to))


def _one_line(value: str, what: str) -> None:
    if not value.strip() or any(not ch.isprintable() for ch in value):
        raise BadInput(f"notice {what} must be one non-empty line of printable text")


@dataclass(frozen=True)
class Rendered:
    """A plain-text message: the subject line and the body."""

    subject: str
    body: str


@dataclass(frozen=True, kw_only=True)
class Notice:
    """Tell one person that their request was carried out, or why it was not.

    ``kind`` is ``erasure`` (Art. 17, carried out everywhere), ``rejection``
    (with the admin's ``reason``, Art. 12(4)) or ``extension`` (with its reason,
    Art. 12(3)); ``completed_at`` is when the work finished or the decision was
    taken, and for an extension the new deadline. Raises BadInput when a field is
    unusable.
    """

    to: str = field(repr=False)
    request_id: str
    kind: Kind
    completed_at: datetime
    organisation: str
    language: Language = "en"
    reason: str = ""

    def __post_init__(self) -> None:
        if not plain_address(self.to):
            raise BadInput("notice recipient is not a single plain e-mail address")
        _one_line(self.request_id, "request_id")
        _one_line(self.organisation, "organisation")
        require_aware(self.completed_at, "completed_at")
        if self.kind not in KINDS:
            raise BadInput(f"notice kind must be one of {sorted(KINDS)}")
        if self.language not in LANGUAGES:
            raise BadInput(f"notice language must be one of {sorted(LANGUAGES)}")
        if self.kind == "rejection" and not self.reason.strip():
            raise BadInput("a rejection notice needs the reason the request was refused")
        if self.kind == "extension" and not self.reason.strip():
            raise BadInput("an extension notice needs the reason for the extension")
        if self.kind not in WITH_REASON and self.reason:
            raise BadInput("only a rejection or extension notice carries a reason")
        if len(self.reason) > MAX_REASON:
            raise BadInput(f"a reason is at most {MAX_REASON} characters")

    def render(self) -> Rendered:
        """The subject and body in the notice's language; the address appears in neither."""
        subject, body = compose(self.language, self.kind, {
            "reference": self.request_id,
            "organisation": self.organisation,
            "when": when_text(self.completed_at, self.language),
            "reason": self.reason.strip(),
        })
        return Rendered(subject=subject, body=body)


@dataclass(frozen=True)
class NotifyReceipt:
    """Proof a notice was handed over: the server's reply code and the id it travelled under.

    ``message_id`` is the e-mail's Message-ID for SMTP, the signed event id for
    the webhook; ``sent_at`` is when the receiver accepted it. Never the address.
    """

    code: int
    message_id: str
    sent_at: datetime
