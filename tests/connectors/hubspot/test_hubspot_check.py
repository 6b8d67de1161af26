"""check() against the HubSpot emulator: each missing scope and each mapping mistake named.

The scopes each call needs are the ``security`` requirements of HubSpot's OpenAPI documents;
the emulator refuses a call without them (403 MISSING_SCOPES) as HubSpot does.
"""

from __future__ import annotations

import pytest

from connectors.hubspot import HubSpotConnector
from core.errors import AuthError, PermanentError
from core.mappings import FieldMapping, SystemMapping
from core.model import DestinationRecord
from privasync.emulators.hubspot import HubSpotEmulator
from privasync.emulators.hubspot.emulator import GRANTED_SCOPES
from tests.connectors.hubspot.conftest import MAPPING, TOKEN
from tests.connectors.hubspot.test_hubspot_destination import WITHDRAWN, subject
from tests.timing import scaled

BATCH_WRITE = "communication_preferences.statuses.batch.write"


def connector(hub: HubSpotEmulator, mapping: SystemMapping = MAPPING) -> HubSpotConnector:
    return HubSpotConnector(base_url=hub.url, access_token=TOKEN, client_secret="s",
                            mapping=mapping, timeout=scaled(5))


def misspelt(name: str) -> SystemMapping:
    """The shipped mapping with one more field, under ``name``."""
    field = FieldMapping(canonical="nickname", category="user.name", purposes=("service",))
    return MAPPING.model_copy(update={"fields": {**MAPPING.fields, name: field}})


def test_read_write_on_preferences_does_not_open_the_v4_batch_write(
        hub: HubSpotEmulator) -> None:
    hub.scopes = tuple(s for s in GRANTED_SCOPES if s != BATCH_WRITE)
    assert "communication_preferences.read_write" in hub.scopes
    with pytest.raises(AuthError) as caught:
        connector(hub).check()
    assert caught.value.error_class == "hubspot_scopes"
    assert BATCH_WRITE in str(caught.value) and "consent writes" in str(caught.value)


def test_check_names_every_scope_a_bare_token_lacks(hub: HubSpotEmulator) -> None:
    hub.scopes = ("oauth",)
    with pytest.raises(AuthError) as caught:
        connector(hub).check()
    for scope in ("crm.objects.contacts.read", "crm.objects.contacts.write", BATCH_WRITE,
                  "communication_preferences.read"):
        assert scope in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_a_portal_without_consent_mapped_needs_no_preferences_scope(
        hub: HubSpotEmulator) -> None:
    hub.scopes = ("crm.objects.contacts.read", "crm.objects.contacts.write")
    fields_only = MAPPING.model_copy(update={"consent": MAPPING.consent.model_copy(
        update={"all_email": (), "subscriptions": {}})})
    connector(hub, fields_only).check()
    assert hub.total_calls("/communication-preferences") == 0


def test_a_consent_write_without_its_scope_fails_naming_the_scope(hub: HubSpotEmulator) -> None:
    hub.scopes = tuple(s for s in GRANTED_SCOPES if s != BATCH_WRITE)
    with pytest.raises(AuthError, match=BATCH_WRITE) as caught:
        connector(hub).apply_consent([subject("s1", "ada@example.org", offers=WITHDRAWN)])
    assert caught.value.error_class == "hubspot_scopes"


def test_check_names_a_misspelt_mapping_property(hub: HubSpotEmulator) -> None:
    with pytest.raises(PermanentError) as caught:
        connector(hub, misspelt("frstname")).check()
    assert caught.value.error_class == "hubspot_properties"
    assert "frstname" in str(caught.value) and "not defined" in str(caught.value)


def test_check_names_a_mapped_property_hubspot_will_not_let_us_write(
        hub: HubSpotEmulator) -> None:
    with pytest.raises(PermanentError) as caught:
        connector(hub, misspelt("hs_email_optout")).check()
    assert caught.value.error_class == "hubspot_properties"
    assert "hs_email_optout read-only" in str(caught.value)


def test_pushing_to_a_misspelt_property_is_refused_naming_it(hub: HubSpotEmulator) -> None:
    ada = hub.create_contact("ada@example.org")
    record = DestinationRecord(subject_id="s1", email="ada@example.org",
                               refs=(f"contact:{ada}",), fields={"nickname": "Ada"})
    with pytest.raises(PermanentError) as caught:
        connector(hub, misspelt("frstname")).push_fields([record])
    assert caught.value.error_class == "hubspot_properties"
    assert "frstname" in str(caught.value) and "PROPERTY_DOESNT_EXIST" in str(caught.value)
    assert "frstname" not in (hub.contact(ada) or {})
