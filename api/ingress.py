"""Ingress: verify, translate, resolve, then one intake transaction, then enqueue.

Shared by the webhook endpoints and the Salesforce poller. Every function
either commits the whole delivery or raises and stores nothing.
"""

from __future__ import annotations

import dataclasses
import hmac
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from api.bootstrap import Container
from connectors.salesforce import SalesforceCursor
from core import runtime
from core.errors import ConfigError, Unauthenticated
from core.intake import IntakeResult
from core.model import CanonicalEvent, SubjectHint, SubjectsMerged, SystemRef


def _accept(container: Container, source: str, events: Sequence[CanonicalEvent],
            now: datetime) -> IntakeResult:
    result = container.intake.accept(events, now)
    for outcome in result.outcomes:
        container.metrics.events.labels(source, outcome).inc()
    container.enqueue(result.job_ids)
    return result


def _with_email(hint: SubjectHint, emails: Mapping[SystemRef, str]) -> SubjectHint:
    if hint.email or hint.ref is None or hint.ref not in emails:
        return hint
    return SubjectHint(ref=hint.ref, email=emails[hint.ref])


def _enrich(events: Sequence[CanonicalEvent],
            emails: Mapping[SystemRef, str]) -> list[CanonicalEvent]:
    out: list[CanonicalEvent] = []
    for ev in events:
        if isinstance(ev, SubjectsMerged):
            out.append(dataclasses.replace(ev, primary=_with_email(ev.primary, emails)))
        else:
            out.append(dataclasses.replace(ev, subject=_with_email(ev.subject, emails)))
    return out


def hubspot_webhook(container: Container, *, method: str, url: str, body: bytes,
                    headers: Mapping[str, str], now: datetime) -> IntakeResult:
    """Verify HubSpot's v3 signature, parse, resolve unknown contacts with one read."""
    hubspot = container.hubspot
    if hubspot is None:
        raise ConfigError("HubSpot is not configured (PRIVASYNC_HUBSPOT__CLIENT_SECRET)")
    hubspot.verify_signature(method=method, url=url, body=body, headers=headers, now=now)
    events = hubspot.parse_events(body)
    refs = [h.ref for h in _hints(events) if h.ref is not None and not h.email]
    with container.engine.connect() as conn:
        unknown = container.identity.unknown_refs(conn, refs)
    emails = hubspot.lookup_emails(unknown) if unknown else {}
    return _accept(container, "hubspot", _enrich(events, emails), now)


def _hints(events: Sequence[CanonicalEvent]) -> list[SubjectHint]:
    return [ev.primary if isinstance(ev, SubjectsMerged) else ev.subject for ev in events]


def mailchimp_webhook(container: Container, *, token: str, body: bytes,
                      now: datetime) -> IntakeResult:
    """Mailchimp signs nothing: the secret token in the URL authenticates it."""
    check_mailchimp_token(container, token)
    assert container.mailchimp is not None
    return _accept(container, "mailchimp", container.mailchimp.parse_webhook(body, now), now)


def check_mailchimp_token(container: Container, token: str) -> None:
    expected = container.settings.mailchimp.webhook_token
    if container.mailchimp is None or expected is None:
        raise ConfigError("Mailchimp webhooks are not configured "
                          "(PRIVASYNC_MAILCHIMP__WEBHOOK_TOKEN)")
    if not hmac.compare_digest(token.encode(), expected.get_secret_value().encode()):
        raise Unauthenticated("unknown webhook token")


CURSOR = "salesforce"


def salesforce_poller(container: Container) -> Callable[[datetime], int]:
    """One poll: changes since the stored cursor, then the new cursor after commit."""

    def poll(now: datetime) -> int:
        salesforce = container.salesforce
        assert salesforce is not None
        stored = runtime.read_cursor(container.engine, CURSOR)
        cursor = SalesforceCursor.from_json(stored) if stored else None
        result = salesforce.poll(cursor, now)
        accepted = _accept(container, "salesforce", result.events, now).accepted
        runtime.write_cursor(container.engine, CURSOR, result.cursor.to_json(), now)
        return accepted

    return poll
