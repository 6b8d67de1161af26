"""Contacts and Leads: which mapped fields each type has, how refs name them, finding them.

privasync does not describe the org (that would cost calls on every start);
it knows Salesforce's standard person fields, and takes a custom field
(``__c``) to exist on both types, as the admin creates it so.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connectors.salesforce.client import SalesforceClient, any_in, select
from core.errors import PermanentError
from core.mappings import SystemMapping
from core.model import PersonAt

PEOPLE = ("Contact", "Lead")
COLLECTION_LIMIT = 200  # records per sObject Collections call
IDENTITY = "Email"  # how subjects are found in Salesforce; privasync never writes it

Key = tuple[str, str]  # (sObject type, record id)
LOOKUP_COLUMNS = "Id, Email, IndividualId"
# Erasure's look-up also reads the names: whether an address is shared (shared_addresses).
NAMED_LOOKUP_COLUMNS = f"{LOOKUP_COLUMNS}, FirstName, LastName"

_COMMON = frozenset({"Email", "FirstName", "LastName", "Salutation", "Title", "Phone",
                     "MobilePhone", "Fax", "Description", "LeadSource"})
STANDARD_FIELDS: dict[str, frozenset[str]] = {
    "Contact": _COMMON | {"HomePhone", "OtherPhone", "MailingStreet", "MailingCity",
                         "MailingState", "MailingPostalCode", "MailingCountry", "Birthdate",
                         "Department"},
    "Lead": _COMMON | {"Street", "City", "State", "PostalCode", "Country", "Company",
                      "Industry", "Website"},
}


def has_field(sobject: str, vendor: str) -> bool:
    return vendor.endswith("__c") or vendor in STANDARD_FIELDS[sobject]


def mapped_fields(mapping: SystemMapping, sobject: str) -> dict[str, str]:
    """The mapping's fields that ``sobject`` has: vendor name to canonical name."""
    return {v: f.canonical for v, f in mapping.fields.items() if has_field(sobject, v)}


def as_text(value: Any) -> str | None:
    """A field's JSON value as canonical text: dates stay ``YYYY-MM-DD``, booleans
    become ``"true"``/``"false"``, numbers ``str``; None (cleared) stays None."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_ref(ref: str) -> Key | None:
    """``Contact:003...`` (optionally prefixed ``salesforce:``) as a key; None if not ours."""
    sobject, _, record_id = ref.removeprefix("salesforce:").partition(":")
    return (sobject, record_id) if sobject in PEOPLE and record_id else None


def look_up(client: SalesforceClient, sobject: str, emails: Collection[str],
            ids: Sequence[str] = (), columns: str = LOOKUP_COLUMNS, *,
            include_deleted: bool = False) -> list[dict[str, Any]]:
    """One query: ``columns`` of the records with these e-mails or ids (with
    ``include_deleted``, by queryAll: deleted ones too)."""
    where = any_in(Email=sorted(emails), Id=list(ids))
    return client.query_all(f"{sobject} lookup", select(columns, sobject, where),
                            include_deleted=include_deleted)


@dataclass(frozen=True)
class Spot:
    """Where one person is in Salesforce: every address (lower-cased, as SOQL compares
    them) and the records their refs name."""

    emails: frozenset[str]
    keys: frozenset[Key]

    def holds(self, sobject: str, row: Mapping[str, Any]) -> bool:
        """Whether ``row``, of ``sobject``, is this person's: named by a ref or carrying
        one of the addresses."""
        return ((sobject, str(row["Id"])) in self.keys
                or str(row.get("Email") or "").lower() in self.emails)


SHARED_REASON = "matched only by an e-mail address another record shares, not by a known id"


def shared_addresses(rows: Iterable[Mapping[str, Any]]) -> frozenset[str]:
    """The addresses (lower-cased) that these Contacts and Leads carry for more than one
    person: records whose names cannot be one person's (last names differ, or both give a
    first name and those differ; case-insensitive, as SOQL compares text). Found by such an
    address alone, a record may be someone else's (a family's shared mailbox), so it is
    nobody's until someone looks. A Contact and a Lead under one name (a first name left out
    on one) are taken as one person."""
    names: dict[str, set[tuple[str, str]]] = {}
    for row in rows:
        email = str(row.get("Email") or "").lower()
        if email:
            names.setdefault(email, set()).add(
                (str(row.get("FirstName") or "").strip().lower(),
                 str(row.get("LastName") or "").strip().lower()))
    return frozenset(e for e, who in names.items()
                     if any(not _one_person(a, b) for a in who for b in who))


def _one_person(a: tuple[str, str], b: tuple[str, str]) -> bool:
    return a[1] == b[1] and (not a[0] or not b[0] or a[0] == b[0])


def _name(row: Mapping[str, Any]) -> tuple[str, str]:
    return (str(row.get("FirstName") or "").strip().lower(),
            str(row.get("LastName") or "").strip().lower())


def unsure(spot: Spot, rows: Iterable[tuple[str, Mapping[str, Any]]],
           shared: Collection[str]) -> frozenset[str]:
    """The shared addresses on which even the person's refs do not tell them apart: refs
    naming records of that address under names that cannot be one person's. privasync
    learns Salesforce refs by address (the poller, a look-up), so both members of a family
    can end up as refs of one subject; then no record of that address is surely theirs."""
    named: dict[str, set[tuple[str, str]]] = {}
    for sobject, row in rows:
        email = str(row.get("Email") or "").lower()
        if email in shared and (sobject, str(row["Id"])) in spot.keys:
            named.setdefault(email, set()).add(_name(row))
    return frozenset(e for e, who in named.items()
                     if any(not _one_person(a, b) for a in who for b in who))


def claim(spot: Spot, sobject: str, row: Mapping[str, Any], shared: Collection[str],
          doubtful: Collection[str] = ()) -> str | None:
    """Whether ``row`` is the person's: ``MINE`` when a ref names it or it alone carries
    one of their addresses, ``REVIEW`` when only an address other records share reaches
    it (or its address is ``doubtful``: see ``unsure``), None when it is not theirs."""
    email = str(row.get("Email") or "").lower()
    if (sobject, str(row["Id"])) in spot.keys:
        return REVIEW if email in doubtful else MINE
    if email not in spot.emails:
        return None
    return REVIEW if email in shared else MINE


MINE, REVIEW = "mine", "review"


def locate(person: PersonAt) -> Spot:
    return Spot(frozenset(e.lower() for e in person.emails if e),
                frozenset(k for k in map(parse_ref, person.refs) if k is not None))


def look_up_spots(client: SalesforceClient, sobject: str, spots: Sequence[Spot],
                  columns: str = LOOKUP_COLUMNS, *,
                  include_deleted: bool = False) -> list[dict[str, Any]]:
    """One query for ``sobject`` over every address and ref of ``spots`` (none when they
    have neither); callers split the rows with ``Spot.holds``."""
    emails = {e for spot in spots for e in spot.emails}
    ids = sorted({i for spot in spots for t, i in spot.keys if t == sobject})
    return (look_up(client, sobject, emails, ids, columns, include_deleted=include_deleted)
            if emails or ids else [])


def matches(rows: Sequence[dict[str, Any]], email: str) -> list[dict[str, Any]]:
    """The rows whose e-mail is ``email`` (lower-cased), as SOQL compares text."""
    return [r for r in rows if email and str(r.get("Email") or "").lower() == email]


def write(client: SalesforceClient, records: list[dict[str, Any]],
          owners: list[list[int]]) -> dict[int, PermanentError]:
    """PATCH ``records`` in collections of 200; per owner index, its first rejection.

    Rejections name the record and Salesforce's code, never a value. Raises
    DeliveryError subclasses when a whole call failed.
    """
    failures: dict[int, PermanentError] = {}
    for start in range(0, len(records), COLLECTION_LIMIT):
        chunk = records[start:start + COLLECTION_LIMIT]
        codes = client.update_collection(chunk)
        for record, code, indexes in zip(chunk, codes, owners[start:start + COLLECTION_LIMIT],
                                         strict=True):
            if code is None:
                continue
            error = PermanentError(f"salesforce rejected {record['attributes']['type']} "
                                   f"{record['id']}: {code}", error_class=code.lower())
            for index in indexes:
                failures.setdefault(index, error)
    return failures
