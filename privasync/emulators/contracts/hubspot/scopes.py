"""The scopes each HubSpot operation privasync may call needs, and the 403 that says so.

Source: the ``security`` requirement of each operation in HubSpot/HubSpot-public-api-spec-
collection (commit in common.SPEC_COMMIT): a list of alternatives, each a set of OAuth scopes
that are all needed; any one alternative suffices. Files:
- ``PublicApiSpecs/Communication Preferences/Subscriptions/Rollouts/176901/v4/subscriptions.json``
- ``PublicApiSpecs/Communication Preferences/Subscriptions/Rollouts/147906/v3/subscriptions.json``
- ``PublicApiSpecs/CRM/Contacts/Rollouts/424/v3/contacts.json``
- ``PublicApiSpecs/CRM/Properties/Rollouts/145899/v3/properties.json``
- ``PublicApiSpecs/CRM/{Emails,Calls,Meetings,Notes}/Rollouts/424/v3/*.json``,
  ``PublicApiSpecs/CRM/Tasks/Rollouts/424/2025-09/tasks.json`` (engagement batch reads)
- ``PublicApiSpecs/CRM/Associations/Rollouts/130902/v4/associations.json``
The private-app token-info call is in no spec (developers.hubspot.com, "Private apps",
"Get access token info"): it takes the token in its body and needs no scope.
"""

from __future__ import annotations

import re

from pydantic import Field

from privasync.emulators.contracts.hubspot.common import Error, ErrorDetail

Alternatives = tuple[frozenset[str], ...]

_CONTACTS_READ: Alternatives = (frozenset({"crm.objects.contacts.read"}),)
_CONTACTS_WRITE: Alternatives = (frozenset({"crm.objects.contacts.write"}),)
_PREFS_READ: Alternatives = (frozenset({"communication_preferences.read_write"}),
                             frozenset({"communication_preferences.read"}))
_PREFS_WRITE: Alternatives = (frozenset({"communication_preferences.read_write"}),
                              frozenset({"communication_preferences.write"}))
# GET /crm/v3/properties/{objectType}: the spec lists 100 alternatives of one scope each,
# whatever the object type.
_PROPERTIES_READ: Alternatives = tuple(frozenset({s}) for s in """
automation cpq.quotes.read cpq.quotes.write crm.objects.appointments.read
crm.objects.appointments.sensitive.read.v2 crm.objects.appointments.sensitive.write.v2
crm.objects.appointments.write crm.objects.calls.read crm.objects.carts.read
crm.objects.commercepayments.write crm.objects.companies.highly_sensitive.read.v2
crm.objects.companies.highly_sensitive.write.v2 crm.objects.companies.read
crm.objects.companies.sensitive.read.v2 crm.objects.companies.sensitive.write.v2
crm.objects.companies.write crm.objects.contacts.highly_sensitive.read.v2
crm.objects.contacts.highly_sensitive.write.v2 crm.objects.contacts.read
crm.objects.contacts.sensitive.read.v2 crm.objects.contacts.sensitive.write.v2
crm.objects.contacts.write crm.objects.courses.read crm.objects.courses.write
crm.objects.custom.highly_sensitive.read.v2 crm.objects.custom.highly_sensitive.write.v2
crm.objects.custom.read crm.objects.custom.sensitive.read.v2
crm.objects.custom.sensitive.write.v2 crm.objects.custom.write
crm.objects.deals.highly_sensitive.read.v2 crm.objects.deals.highly_sensitive.write.v2
crm.objects.deals.read crm.objects.deals.sensitive.read.v2 crm.objects.deals.sensitive.write.v2
crm.objects.deals.write crm.objects.emails.read crm.objects.feedback_submissions.read
crm.objects.goals.read crm.objects.goals.write crm.objects.invoices.read
crm.objects.invoices.write crm.objects.leads.read crm.objects.leads.write
crm.objects.line_items.read crm.objects.line_items.write crm.objects.listings.read
crm.objects.listings.write crm.objects.marketing_events.read crm.objects.marketing_events.write
crm.objects.meetings.read crm.objects.notes.read crm.objects.orders.read crm.objects.owners.read
crm.objects.products.write crm.objects.projects.highly_sensitive.read
crm.objects.projects.highly_sensitive.write crm.objects.projects.read
crm.objects.projects.sensitive.read crm.objects.projects.sensitive.write
crm.objects.projects.write crm.objects.quotes.read crm.objects.quotes.write
crm.objects.services.read crm.objects.services.write crm.objects.subscriptions.read
crm.objects.subscriptions.write crm.objects.tasks.read crm.objects.tickets.highly_sensitive.read
crm.objects.tickets.sensitive.read crm.objects.users.read crm.pipelines.orders.read
crm.schemas.appointments.read crm.schemas.calls.read crm.schemas.carts.read
crm.schemas.commercepayments.read crm.schemas.companies.read crm.schemas.contacts.read
crm.schemas.courses.read crm.schemas.custom.read crm.schemas.deals.read crm.schemas.emails.read
crm.schemas.invoices.read crm.schemas.line_items.read crm.schemas.listings.read
crm.schemas.meetings.read crm.schemas.notes.read crm.schemas.orders.read
crm.schemas.projects.read crm.schemas.quotes.read crm.schemas.services.read
crm.schemas.subscriptions.read crm.schemas.tasks.read crm.schemas.tickets.read e-commerce
media_bridge.read tickets tickets.highly_sensitive.v2 tickets.sensitive.v2 timeline
""".split())

# POST /crm/v4/associations/{from}/{to}/batch/read: 80 alternatives of one scope each.
_ASSOCIATIONS_READ: Alternatives = tuple(frozenset({s}) for s in """
crm.objects.appointments.read crm.objects.appointments.sensitive.read.v2
crm.objects.appointments.sensitive.write.v2 crm.objects.appointments.write
crm.objects.calls.read crm.objects.carts.read crm.objects.carts.write
crm.objects.commercepayments.read crm.objects.commercepayments.write
crm.objects.companies.highly_sensitive.read.v2
crm.objects.companies.highly_sensitive.write.v2 crm.objects.companies.read
crm.objects.companies.sensitive.read.v2 crm.objects.companies.sensitive.write.v2
crm.objects.companies.write crm.objects.contacts.highly_sensitive.read.v2
crm.objects.contacts.highly_sensitive.write.v2 crm.objects.contacts.read
crm.objects.contacts.sensitive.read.v2 crm.objects.contacts.sensitive.write.v2
crm.objects.contacts.write crm.objects.courses.read crm.objects.courses.write
crm.objects.custom.highly_sensitive.read.v2 crm.objects.custom.highly_sensitive.write.v2
crm.objects.custom.read crm.objects.custom.sensitive.read.v2
crm.objects.custom.sensitive.write.v2 crm.objects.custom.write
crm.objects.deals.highly_sensitive.read.v2 crm.objects.deals.highly_sensitive.write.v2
crm.objects.deals.read crm.objects.deals.sensitive.read.v2
crm.objects.deals.sensitive.write.v2 crm.objects.deals.write crm.objects.emails.read
crm.objects.goals.read crm.objects.goals.write crm.objects.invoices.read
crm.objects.invoices.write crm.objects.leads.read crm.objects.leads.write
crm.objects.line_items.read crm.objects.line_items.write crm.objects.listings.read
crm.objects.listings.write crm.objects.meetings.read crm.objects.notes.read
crm.objects.orders.read crm.objects.orders.write crm.objects.partner-clients.read
crm.objects.partner-clients.write crm.objects.partner-services.read
crm.objects.partner-services.write crm.objects.products.read crm.objects.products.write
crm.objects.projects.highly_sensitive.read crm.objects.projects.highly_sensitive.write
crm.objects.projects.read crm.objects.projects.sensitive.read
crm.objects.projects.sensitive.write crm.objects.projects.write crm.objects.quotes.read
crm.objects.quotes.write crm.objects.services.read crm.objects.services.write
crm.objects.subscriptions.read crm.objects.subscriptions.write crm.objects.tasks.read
crm.objects.tickets.highly_sensitive.read crm.objects.tickets.highly_sensitive.write
crm.objects.tickets.sensitive.read crm.objects.tickets.sensitive.write
crm.objects.users.read crm.objects.users.write e-commerce media_bridge.read tickets
tickets.highly_sensitive.v2 tickets.sensitive.v2
""".split())
# Engagement batch reads: e-mails also with sales-email-read (the e-mails spec).
_EMAILS_READ: Alternatives = (frozenset({"crm.objects.contacts.read"}),
                              frozenset({"sales-email-read"}))

_V4, _V3, _C = "/communication-preferences/v4", "/communication-preferences/v3", \
    "/crm/v3/objects/contacts"
OPERATION_SCOPES: dict[tuple[str, str], Alternatives] = {
    ("POST", f"{_V4}/statuses/batch/write"): (
        frozenset({"communication_preferences.statuses.batch.write"}),),
    ("POST", f"{_V4}/statuses/batch/read"): (
        frozenset({"communication_preferences.statuses.batch.read"}),),
    ("POST", f"{_V4}/statuses/{{subscriberIdString}}/unsubscribe-all"): _PREFS_WRITE,
    ("GET", f"{_V3}/definitions"): _PREFS_READ,
    ("GET", f"{_V3}/status/email/{{emailAddress}}"): _PREFS_READ,
    ("POST", f"{_V3}/subscribe"): _PREFS_WRITE,
    ("POST", f"{_V3}/unsubscribe"): _PREFS_WRITE,
    ("POST", f"{_C}/batch/read"): _CONTACTS_READ,
    ("POST", f"{_C}/batch/update"): _CONTACTS_WRITE,
    ("POST", f"{_C}/gdpr-delete"): _CONTACTS_WRITE,
    ("POST", f"{_C}/merge"): _CONTACTS_WRITE,
    ("POST", f"{_C}/search"): _CONTACTS_READ,
    ("POST", _C): _CONTACTS_WRITE,
    ("GET", f"{_C}/{{contactId}}"): _CONTACTS_READ,
    ("PATCH", f"{_C}/{{contactId}}"): _CONTACTS_WRITE,
    ("DELETE", f"{_C}/{{contactId}}"): _CONTACTS_WRITE,
    ("GET", "/crm/v3/properties/{objectType}"): _PROPERTIES_READ,
    ("POST", "/crm/v3/objects/emails/batch/read"): _EMAILS_READ,
    ("POST", "/crm/v3/objects/calls/batch/read"): _CONTACTS_READ,
    ("POST", "/crm/v3/objects/meetings/batch/read"): _CONTACTS_READ,
    ("POST", "/crm/v3/objects/notes/batch/read"): _CONTACTS_READ,
    ("POST", "/crm/v3/objects/tasks/batch/read"): _CONTACTS_READ,
    ("POST", "/crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read"):
        _ASSOCIATIONS_READ,
}
_COMPILED = [(method, re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"), alts)
             for (method, path), alts in OPERATION_SCOPES.items()]


def required_scopes(method: str, path: str) -> Alternatives | None:
    """The scope alternatives of the operation at ``method path``; None if it is not one
    of the table's (then no scope is checked)."""
    return next((alts for m, pattern, alts in _COMPILED
                 if m == method and pattern.match(path)), None)


def missing(alternatives: Alternatives, granted: frozenset[str] | set[str]) -> list[str]:
    """Empty when some alternative is wholly granted; else every scope any alternative
    names, sorted (what HubSpot lists as required)."""
    if any(alt <= granted for alt in alternatives):
        return []
    return sorted(set().union(*alternatives))


class MissingScopes(Error):
    """A 403 for a token without the operation's scopes: the spec's ``Error`` with
    category ``MISSING_SCOPES``. The wording, ``errors[0].context.requiredGranularScopes``
    and ``links.scopes`` are HubSpot's answers as quoted in HubSpot Community threads (the
    spec's own ErrorDetail example names the key ``missingScopes``)."""

    category: str = Field(pattern="^MISSING_SCOPES$")
    errors: list[ErrorDetail] | None = Field(default=None, min_length=1)
