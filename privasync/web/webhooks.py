"""The webhook receivers: verify, validate, store in the inbox, answer. Nothing else happens
in a request.

A delivery is parsed strictly here so that bad input is refused at the door,
storing nothing; the applier parses it again when it applies it (parsing is
cheap, storing the raw verified bytes keeps the inbox a plain record of what
came in).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from datetime import datetime

from connectors.partner import OpenDsrConnector, PartnerConnector, signed
from core import inbox
from core.errors import ConfigError, Forbidden, Unauthenticated
from privasync.app.bootstrap import Container


def hubspot_webhook(container: Container, *, method: str, url: str, body: bytes,
                    headers: Mapping[str, str], now: datetime) -> inbox.Stored:
    """Verify HubSpot's v3 signature, validate the batch, store it.

    HubSpot's own retries carry a new ``attemptNumber``, so bytes stored before that
    come again are a replay (within the five-minute signature window; after it the
    timestamp is refused): answered 2xx without effect, counted as ``replayed``."""
    hubspot = container.hubspot
    if hubspot is None:
        raise ConfigError("HubSpot is not configured (PRIVASYNC_HUBSPOT__CLIENT_SECRET)")
    with container.foreground.serving():
        hubspot.verify_signature(method=method, url=url, body=body, headers=headers, now=now)
        return container.store("hubspot", body, now, hubspot.validate(body), again="replayed")


def mailchimp_webhook(container: Container, *, token: str, body: bytes,
                      now: datetime) -> inbox.Stored:
    """Mailchimp signs nothing: the secret token in the URL authenticates it."""
    check_mailchimp_token(container, token)
    assert container.mailchimp is not None
    with container.foreground.serving():
        events = container.mailchimp.parse_webhook(body, now)
        return container.store("mailchimp", body, now, len(events))


def check_mailchimp_token(container: Container, token: str) -> None:
    expected = container.settings.mailchimp.webhook_token
    if container.mailchimp is None or expected is None:
        raise ConfigError("Mailchimp webhooks are not configured "
                          "(PRIVASYNC_MAILCHIMP__WEBHOOK_TOKEN)")
    if not hmac.compare_digest(token.encode(), expected.get_secret_value().encode()):
        raise Unauthenticated("unknown webhook token")


def partner_message(container: Container, *, name: str, kind: str,
                    headers: Mapping[str, str], body: bytes, now: datetime) -> inbox.Stored:
    """A partner's signed acknowledgement (``kind`` "ack") or a request it passes on
    ("requests"). A forged, stale or replayed one (an event id seen before) is refused
    and changes nothing."""
    partner = container.partners.get(name)
    if not isinstance(partner, PartnerConnector):
        raise ConfigError("no partner of that name takes signed messages")
    with container.foreground.serving():
        event_id = partner.verify_ack(headers, body, now)
        parse = partner.parse_ack if kind == "ack" else partner.parse_ask
        events = list(parse(body, now))
        # A hash of the id, not its first characters: ids of up to 200 characters that
        # share a prefix are different events.
        # The body as signed, with its signature headers: the proof is checkable later.
        stored = container.store(f"partner:{name}", signed.wrap(body, headers,
                                                                signed.OWN_HEADERS),
                                 now, len(events),
                                 key=container.keyring.delivery_key(f"event:{event_id}".encode()),
                                 again="replayed")
    if stored.duplicate:
        container.metrics.rejected.labels(f"partner:{name}", "Replayed").inc()
        raise Unauthenticated("this event id was delivered before: a replay changes nothing")
    return stored


def opendsr_callback(container: Container, *, name: str, kind: str,
                     headers: Mapping[str, str], body: bytes, now: datetime) -> inbox.Stored:
    """A processor's OpenDSR status callback, verified against its pinned certificate.
    Callbacks come at least once: the same status again is answered and stored once.
    A signature that fails is Forbidden (403): OpenDSR v2.0 §8.8 step 5."""
    partner = container.partners.get(name)
    if not isinstance(partner, OpenDsrConnector):
        raise ConfigError("no OpenDSR processor of that name")
    with container.foreground.serving():
        try:
            partner.verify_callback(headers, body, now)
        except Unauthenticated as exc:
            raise Forbidden(str(exc)) from exc
        events = partner.parse_callback(body, now)
        # Deduplicated on the body alone: the same status again is stored once.
        return container.store(f"partner:{name}", signed.wrap(body, headers,
                                                              signed.OPENDSR_HEADERS),
                               now, len(events), key=container.keyring.delivery_key(body))
