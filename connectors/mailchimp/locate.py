"""Where a person's Mailchimp members are, for erasing and exporting them.

A person may be on the list under each address privasync knows for them; each
is looked at. Mailchimp's member id (the MD5 of the address) is computed here, in
flight, from the decrypted address: privasync never stores it.

Member paths also take the address itself or the member's ``contact_id`` (Marketing API
definition: subscriber_hash "also accepts a list member's email address or contact_id").
privasync keeps sending the MD5: an address in the path would put it into every URL
(proxy and access logs, the request lines of errors), and privasync keeps no contact_id
(it stores no vendor member id at all).
"""

from __future__ import annotations

from connectors.mailchimp.client import MailchimpApi, subscriber_hash
from core.errors import PermanentError
from core.model import PersonAt


def member_hashes(person: PersonAt) -> list[str]:
    """The subscriber hashes of the person's addresses, each once.

    Addresses differing only in case are one member (Mailchimp hashes them lower-cased).
    """
    return list(dict.fromkeys(subscriber_hash(email) for email in person.emails if email))


def no_identifier(subject_id: str) -> PermanentError:
    """Nothing to look a person up by: neither saying they are gone nor what is held is true."""
    return PermanentError(f"subject {subject_id} has no e-mail address: a Mailchimp member "
                          "is found by its address", error_class="no_identifier")


def require_list(api: MailchimpApi, list_id: str, what: str) -> None:
    """Raise PermanentError (``list_not_found``) unless the list exists.

    Mailchimp answers 404 alike for a member not on the list and for a list that
    does not exist, so without this a wrong list id would read as "not a member"
    for everybody: erasures verified that erased nothing, exports that omit data.
    """
    if api.call("GET", f"/lists/{list_id}?fields=id", what, missing_ok=True) is None:
        raise PermanentError(f"{what}: mailchimp list {list_id} does not exist",
                             error_class="list_not_found")
