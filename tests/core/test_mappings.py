"""Mapping files: every error names the file, the line and what is wrong."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from core.mappings import MappingError, is_special_category, load_mappings
from privasync.app.taxonomy import data_categories

PURPOSES = """\
purposes:
  service:
    legal_basis: contract
    consent_required: false
    art9_ground: explicit_consent
  offers:
    legal_basis: consent
    consent_required: true
    channels: [email]
  age_check:
    legal_basis: legal_obligation
    consent_required: false
"""

SYSTEM = """\
system: crm
purposes: [service, offers]
fields:
  email: {canonical: email, category: user.contact.email, purposes: [service, offers]}
  dob: {canonical: date_of_birth, category: user.demographic.date_of_birth,
        purposes: [age_check]}
"""


def write(tmp_path: Path, **files: str) -> Path:
    contents = {"purposes.yaml": PURPOSES, "crm.yaml": SYSTEM} | {
        f"{k}.yaml": v for k, v in files.items()}
    for name, text in contents.items():
        if text:
            (tmp_path / name).write_text(text)
    return tmp_path


def issues(tmp_path: Path, **files: str) -> list[str]:
    with pytest.raises(MappingError) as caught:
        load_mappings(write(tmp_path, **files), data_categories())
    return [str(i) for i in caught.value.issues]


def test_a_valid_set_loads_with_its_fields_and_purposes(tmp_path: Path):
    mappings = load_mappings(write(tmp_path), data_categories())
    assert mappings.fields["date_of_birth"].purposes == ("age_check",)
    assert mappings.destination_purposes("crm") == {"service", "offers"}


def test_an_unknown_taxonomy_key_is_named_with_a_suggestion(tmp_path: Path):
    crm = SYSTEM.replace("user.contact.email", "user.contact.emial")
    assert issues(tmp_path, crm=crm) == [
        "crm.yaml:4: field email: unknown data category 'user.contact.emial' (not in the "
        "fideslang taxonomy); did you mean 'user.contact.email'?"]


def test_a_purpose_that_does_not_exist(tmp_path: Path):
    crm = SYSTEM.replace("purposes: [age_check]", "purposes: [age_chek]")
    assert issues(tmp_path, crm=crm) == [
        "crm.yaml:6: purpose 'age_chek' does not exist (known: age_check, offers, service)"]


def test_a_field_mapped_twice(tmp_path: Path):
    crm = SYSTEM + ("  mail2: {canonical: email, category: user.contact.email, "
                    "purposes: [service, offers]}\n")
    assert issues(tmp_path, crm=crm) == [
        "crm.yaml:7: field 'email' is mapped twice (by email and mail2)"]


def test_the_same_yaml_key_twice_is_not_silently_overwritten(tmp_path: Path):
    crm = SYSTEM + "  dob: {canonical: birth, category: user.demographic, purposes: [service]}\n"
    assert "crm.yaml:7: key 'dob' appears twice (first on line 5)" in issues(tmp_path, crm=crm)


def test_a_special_category_routed_to_a_purpose_without_an_art9_ground(tmp_path: Path):
    crm = SYSTEM + ("  note: {canonical: health_note, category: user.health_and_medical,\n"
                    "         purposes: [service, offers]}\n")
    assert issues(tmp_path, crm=crm) == [
        "crm.yaml:8: field note is a special category (Art. 9) routed to purpose 'offers', "
        "which has no art9_ground in purposes.yaml"]


def test_trade_union_membership_is_markable_as_special(tmp_path: Path):
    crm = SYSTEM + ("  union: {canonical: union_member, category: user.workplace,\n"
                    "          special_category: true, purposes: [offers]}\n")
    assert issues(tmp_path, crm=crm) == [
        "crm.yaml:8: field union is a special category (Art. 9) routed to purpose 'offers', "
        "which has no art9_ground in purposes.yaml"]


def test_one_field_with_two_meanings_across_systems(tmp_path: Path):
    other = SYSTEM.replace("system: crm", "system: shop").replace(
        "purposes: [age_check]", "purposes: [offers]")
    assert issues(tmp_path, shop=other) == [
        "shop.yaml:5: field 'date_of_birth' has another category, purposes or sensitivity "
        "than in crm.yaml"]


def test_a_bad_legal_basis_and_unknown_keys_are_named(tmp_path: Path):
    purposes = PURPOSES.replace("legal_basis: legal_obligation", "legal_basis: hunch")
    found = issues(tmp_path, purposes=purposes + "extra: 1\n")
    assert found[0] == "purposes.yaml:13: extra: unknown key (expected only 'purposes')"
    assert found[1].startswith("purposes.yaml:11: purposes.age_check.legal_basis: Input should")


@pytest.mark.parametrize(("category", "special"), [
    ("user.health_and_medical", True), ("user.health_and_medical.genetic", True),
    ("user.biometric.voice", True), ("user.demographic.religious_belief", True),
    ("user.demographic.race_ethnicity", True), ("user.criminal_history", True),
    ("user.demographic.political_opinion", True), ("user.demographic.sexual_orientation", True),
    ("user.demographic.date_of_birth", False), ("user.contact.email", False),
    ("user.health", False),
])
def test_special_categories_are_recognised_from_the_taxonomy(category: str, special: bool):
    assert is_special_category(category) is special


def test_the_shipped_mappings_are_valid():
    mappings = load_mappings(Path(__file__).parents[2] / "mappings", data_categories())
    assert mappings.fields["health_note"].special
    assert "age_check" not in mappings.destination_purposes("mailchimp")
    centre = mappings.partners["contact_centre"]
    assert (centre.protocol, centre.ack_window) == ("privasync", timedelta(hours=72))


PARTNERS = """\
partners:
  centre:
    url: http://partner.example/privasync
    secret_setting: CENTRE_SECRET
    purposes: [offers]
    agreement: DPA-1
"""

PROCESSOR = """\
partners:
  analytics:
    protocol: opendsr
    url: https://opendsr.processor.example
    certificate_setting: ANALYTICS_CERTIFICATE
    controller_id: "3622"
    purposes: [offers]
    agreement: DPA-2
    ack_within: 3d
"""


def test_a_partner_speaks_privasync_and_has_72_hours_to_acknowledge_by_default(
        tmp_path: Path):
    [partner] = load_mappings(write(tmp_path, partners=PARTNERS),
                              data_categories()).partners.values()
    assert partner.protocol == "privasync"
    assert partner.ack_window == timedelta(hours=72)


@pytest.mark.parametrize(("written", "window"), [
    ("90s", timedelta(seconds=90)), ("30m", timedelta(minutes=30)),
    ("72h", timedelta(hours=72)), ("3d", timedelta(days=3))])
def test_ack_within_is_seconds_minutes_hours_or_days(tmp_path: Path, written: str,
                                                    window: timedelta):
    text = PARTNERS + f"    ack_within: {written}\n"
    [partner] = load_mappings(write(tmp_path, partners=text), data_categories()).partners.values()
    assert partner.ack_window == window


@pytest.mark.parametrize("written", ["72", "3 days", "0h", "-1d", "1.5h", "10 s", "1w", "h"])
def test_any_other_ack_within_is_refused_at_its_line(tmp_path: Path, written: str):
    text = PARTNERS + f"    ack_within: '{written}'\n"
    assert issues(tmp_path, partners=text) == [
        "partners.yaml:7: partners.centre.ack_within: Value error, expected a whole number of "
        "seconds, minutes, hours or days, e.g. 90s, 30m, 72h, 3d"]


def test_an_opendsr_processor_loads_with_its_pinned_certificate_and_controller_id(
        tmp_path: Path):
    [partner] = load_mappings(write(tmp_path, partners=PROCESSOR),
                              data_categories()).partners.values()
    assert (partner.protocol, partner.certificate_setting, partner.controller_id) == (
        "opendsr", "ANALYTICS_CERTIFICATE", "3622")
    assert partner.ack_window == timedelta(days=3)


def test_an_opendsr_processor_without_its_certificate_or_controller_id_is_refused(
        tmp_path: Path):
    text = PROCESSOR.replace("    certificate_setting: ANALYTICS_CERTIFICATE\n", "").replace(
        '    controller_id: "3622"\n', "")
    assert issues(tmp_path, partners=text) == [
        "partners.yaml:3: partners.analytics: Value error, protocol opendsr needs "
        "certificate_setting and controller_id"]


def test_a_privasync_partner_needs_its_secret_and_takes_no_opendsr_settings(tmp_path: Path):
    unsigned = PARTNERS.replace("    secret_setting: CENTRE_SECRET\n", "")
    mixed = PARTNERS + "    controller_id: x\n"
    assert issues(tmp_path, partners=unsigned) == [
        "partners.yaml:3: partners.centre: Value error, protocol privasync needs "
        "secret_setting (the variable holding the signing secret)"]
    assert issues(tmp_path, partners=mixed) == [
        "partners.yaml:3: partners.centre: Value error, controller_id apply only to "
        "protocol opendsr"]


def test_an_unknown_protocol_is_named(tmp_path: Path):
    found = issues(tmp_path, partners=PARTNERS + "    protocol: smtp\n")
    assert len(found) == 1
    assert found[0].startswith("partners.yaml:7: partners.centre.protocol: Input should be")
