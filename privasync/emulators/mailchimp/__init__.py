"""Mailchimp Marketing API v3 on loopback: one list's members, batch writes, webhooks.

What privasync relies on is reproduced as Mailchimp does it (VENDOR_APIS.md C):
problem+json errors, the compliance rule that an opted-out member cannot be
re-subscribed by API, forgotten addresses after delete-permanent, the cap of
simultaneous connections, the whole member view (merge fields, permissions, tags,
zoned timestamps, signup IPs) cut down by ``fields``/``exclude_fields``, and
webhooks that are form-encoded with PHP-style keys, checked with a GET when
created, and filtered by source (user, admin, api) so a deployment can keep its
own API writes from echoing back.
"""

from privasync.emulators.mailchimp.common import (
    EVENTS,
    MAX_BATCH,
    MAX_PAGE,
    PREFIX,
    SOURCES,
    STATUSES,
    WRITABLE,
    Problem,
    subscriber_hash,
)
from privasync.emulators.mailchimp.emulator import MailchimpEmulator, Route
from privasync.emulators.mailchimp.webhooks import WebhookDelivery

__all__ = ["EVENTS", "MAX_BATCH", "MAX_PAGE", "PREFIX", "SOURCES", "STATUSES", "WRITABLE",
           "MailchimpEmulator", "Problem", "Route", "WebhookDelivery", "subscriber_hash"]
