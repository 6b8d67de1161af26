"""``check`` names every right the integration user lacks for a configured feature."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.plugin import Connection
from connectors.ratelimits import Limits
from connectors.salesforce import SalesforceConnector
from core.errors import PermanentError
from core.mappings import SystemConsent
from privasync.app.system_checks import _try
from privasync.emulators.salesforce import SalesforceEmulator
from tests.connectors.salesforce.conftest import MAPPING
from tests.emulators.conftest import started


def connect(emu: SalesforceEmulator, **options: object) -> SalesforceConnector:
    mapping = options.pop("mapping", MAPPING)
    return SalesforceConnector(instance_url=emu.url, session_id=emu.session_id,
                               mapping=mapping, **options)  # type: ignore[arg-type]


@pytest.fixture
def narrowed(request: pytest.FixtureRequest) -> Iterator[SalesforceEmulator]:
    with started(SalesforceEmulator(withheld=request.param)) as emu:
        yield emu


def test_a_user_with_every_right_passes_in_five_counted_calls(emulator):
    connect(emulator).check()

    assert emulator.api_used == 5  # limits and four describes; the version list is free


@pytest.mark.parametrize("narrowed", [(
    "Contact:delete", "Lead.HasOptedOutOfEmail:edit", "Individual:read",
    "Contact.Phone:edit", "Lead.Health_Note__c:read", "ContactPointTypeConsent:delete",
)], indirect=True)
def test_each_missing_right_is_named_with_the_feature_that_needs_it(narrowed):
    with pytest.raises(PermanentError) as caught:
        connect(narrowed).check()

    said = str(caught.value)
    assert caught.value.error_class == "salesforce_permissions"
    for named in ("Contact delete (erase)", "Lead.HasOptedOutOfEmail edit (consent)",
                  "Individual read (poll, erase, export)", "Individual delete (erase)",
                  "Individual.HasOptedOutSolicit edit (consent)",
                  "Contact.Phone edit (push fields)", "Lead.Health_Note__c edit (push fields)",
                  "ContactPointTypeConsent delete (erase)"):
        assert named in said
    assert "Lead delete" not in said and "Contact.HasOptedOutOfEmail" not in said


@pytest.mark.parametrize("narrowed", [("Contact.HasOptedOutOfEmail:edit",)], indirect=True)
def test_without_consent_writes_configured_the_opt_out_field_is_not_needed(narrowed):
    mapping = MAPPING.model_copy(update={"consent": SystemConsent(), "fields": {}})

    connect(narrowed, mapping=mapping).check()


def test_an_org_without_the_consent_object_is_not_a_missing_right():
    with started(SalesforceEmulator(consent_objects=False)) as emu:
        connect(emu).check()


@pytest.mark.parametrize("narrowed", [("PermissionsBulkApiHardDelete",)], indirect=True)
def test_a_hard_delete_needs_no_bulk_api_hard_delete_permission(narrowed):
    """emptyRecycleBin purges the user's own bin: no permission beyond read and delete."""
    connect(narrowed, hard_delete=True).check()

    assert narrowed.api_used == 5  # no UserPermissionAccess query


@pytest.mark.parametrize("narrowed", [("Contact:delete",)], indirect=True)
def test_a_hard_delete_names_the_delete_right_it_purges_with(narrowed):
    with pytest.raises(PermanentError) as caught:
        connect(narrowed, hard_delete=True).check()

    assert "Contact delete (erase, purge)" in str(caught.value)


@pytest.mark.parametrize("narrowed", [("Lead:delete",)], indirect=True)
def test_privasync_check_says_what_is_missing_and_where_to_grant_it(narrowed):
    checked = _try("salesforce", lambda: Connection(connect(narrowed)), "ok")

    assert checked.ok is False
    assert "lacks: Lead delete (erase)" in checked.detail
    assert "permission set" in checked.detail and narrowed.session_id not in checked.detail


def test_privasync_check_says_when_salesforce_is_held_at_its_reserve():
    with started(SalesforceEmulator(api_limit=1_000)) as emu:
        emu.api_used = 905  # the limits reading is the 906th: 94 left of 1,000
        allowance = Limits().allowance("salesforce", reserve=0.1, refresh_seconds=300)
        checked = _try("salesforce", lambda: Connection(connect(emu, allowance=allowance)),
                       "ok")

        assert checked.ok is False
        assert checked.detail.startswith("limits: 94 of the org's 1,000 daily API requests "
                                         "left, within the 10% privasync leaves")
        assert "PRIVASYNC_SALESFORCE__API_RESERVE" in checked.detail
        assert emu.api_used == 906  # nothing more spent: the rights wait too
