"""HubSpot's published shapes for every call privasync makes or receives.

Written from HubSpot's OpenAPI documents in HubSpot/HubSpot-public-api-spec-collection
(commit ``common.SPEC_COMMIT``, 2026-08-21) and, where no document covers a call
(webhook deliveries, private-app token info), from HubSpot's developer documentation;
each module names its files and versions:

- ``common``: Error, ErrorDetail, StandardError, the batch envelope, the batch limit.
- ``scopes``: the scopes each operation needs (the spec's ``security``), the 403 body.
- ``contacts``: Contacts v3 (batch read/update, GDPR delete, merge), Properties v3.
- ``preferences``: communication preferences v4 (batch write/read, unsubscribe-all) and v3.
- ``webhooks``: webhook events and signature headers, the token-info call.

Privasync calls: v4 ``statuses/batch/write`` (consent), Contacts ``batch/read`` and
``batch/update`` (look-ups, record fields, read-backs, export), ``gdpr-delete`` (erasure),
``GET /crm/v3/properties/contacts`` (export, check), ``GET /communication-preferences/v3/
definitions`` and token info (check); it receives signed ``contact.*`` webhooks.
"""
