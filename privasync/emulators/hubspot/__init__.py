"""An in-memory HubSpot on a loopback port, for tests, the demo and the benchmark.

It speaks the slice privasync uses (contacts, GDPR delete, merge, contact property
definitions, communication preferences v3 and v4) with HubSpot's paths, error bodies,
rolling rate limit, ``X-HubSpot-RateLimit-*`` and correlation-id headers, so
hubspot-api-client and plain requests run unchanged but for the base URL. Changes
fire webhooks signed with signature v3 from one sender thread, batched and retried
as HubSpot does. The ``ui_*`` helpers stand in for a marketer clicking in the CRM
(changeSource ``CRM_UI``).

It is strict: every request body is read through privasync.emulators.contracts.hubspot (HubSpot's
OpenAPI documents) and refused as HubSpot refuses it, every call needs the scopes the spec
names for it, and v4 speaks ``UNSUBSCRIBED`` where v3 speaks ``NOT_SUBSCRIBED``.
"""

from privasync.emulators.hubspot.common import BATCH_LIMIT as BATCH_LIMIT
from privasync.emulators.hubspot.common import LEGAL_BASES as LEGAL_BASES
from privasync.emulators.hubspot.common import NOT_SPECIFIED as NOT_SPECIFIED
from privasync.emulators.hubspot.common import NOT_SUBSCRIBED as NOT_SUBSCRIBED
from privasync.emulators.hubspot.common import SUBSCRIBED as SUBSCRIBED
from privasync.emulators.hubspot.common import UNSUBSCRIBED as UNSUBSCRIBED
from privasync.emulators.hubspot.common import HubSpotError, StatusChange
from privasync.emulators.hubspot.emulator import HubSpotEmulator
from privasync.emulators.hubspot.webhooks import DEFAULT_WEBHOOK_SUBSCRIPTIONS, sign_v3

__all__ = ["DEFAULT_WEBHOOK_SUBSCRIPTIONS", "HubSpotEmulator", "HubSpotError", "StatusChange",
           "sign_v3"]
