"""Properties of minimisation, for random mappings, records and consent states.

The oracle below restates the GDPR rules directly; it shares no code with
core.minimise, so a wrong rule there fails here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.mappings import Art9Ground, FieldMapping, LegalBasis, Mappings, Purpose
from core.minimise import Reason, SubjectContext, minimise
from core.model import Channel, ConsentState, ConsentStatus, Evidence, FieldValue

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
PURPOSE_KEYS = ["service", "offers", "news", "age", "delivery"]
CATEGORIES = ["user.contact.email", "user.name.first", "user.demographic.date_of_birth",
              "user.health_and_medical", "user.demographic.religious_belief", "user.workplace"]
EVIDENCE = Evidence("web", "form", "v1", "proof-1")

purposes_st = st.dictionaries(
    st.sampled_from(PURPOSE_KEYS),
    st.builds(Purpose, legal_basis=st.sampled_from(list(LegalBasis)),
              consent_required=st.booleans(), soft_opt_in=st.booleans(),
              art9_ground=st.none() | st.sampled_from(list(Art9Ground)),
              retention_days=st.none() | st.integers(1, 400)),
    min_size=1)


@st.composite
def scenario(draw):  # type: ignore[no-untyped-def]
    purposes = draw(purposes_st)
    keys = sorted(purposes)
    fields = {}
    for i in range(draw(st.integers(1, 6))):
        fields[f"f{i}"] = FieldMapping(
            canonical=f"f{i}", category=draw(st.sampled_from(CATEGORIES)),
            purposes=tuple(draw(st.lists(st.sampled_from(keys), min_size=1, unique=True))),
            special_category=draw(st.booleans()),
            retention_days=draw(st.none() | st.integers(1, 400)))
    consents = {}
    for key in draw(st.lists(st.sampled_from(keys), unique=True)):
        status = draw(st.sampled_from(list(ConsentStatus)))
        consents[(key, Channel.EMAIL)] = ConsentState(
            key, Channel.EMAIL, status, NOW - timedelta(days=1), "test",
            EVIDENCE if draw(st.booleans()) else None)
    record = {name: FieldValue(draw(st.none() | st.text(max_size=5)),
                               NOW - timedelta(days=draw(st.integers(0, 500))))
              for name in draw(st.lists(st.sampled_from([*fields, "unmapped"]), unique=True))}
    destination = frozenset(draw(st.lists(st.sampled_from(keys), unique=True)))
    subject = SubjectContext(consents, is_customer=draw(st.booleans()))
    return Mappings(purposes, {}, {}, fields), record, subject, destination


def allowed_for(purpose_key, mappings, mapping, value, subject) -> bool:  # type: ignore[no-untyped-def]
    purpose = mappings.purposes[purpose_key]
    mine = [c for (p, _), c in subject.consents.items() if p == purpose_key]
    granted = [c for c in mine if c.status is ConsentStatus.GRANTED]
    if purpose.legal_basis is LegalBasis.CONSENT:
        soft = purpose.soft_opt_in and subject.is_customer and not mine
        if not granted and not soft:
            return False
    elif purpose.legal_basis is LegalBasis.LEGITIMATE_INTEREST:
        if mine and not granted:
            return False
    elif purpose.legal_basis is LegalBasis.CONTRACT and not subject.is_customer:
        return False
    special = mapping.special_category or mapping.category.startswith(
        ("user.health_and_medical", "user.demographic.religious_belief"))
    if special:
        if purpose.art9_ground is None:
            return False
        if purpose.art9_ground is Art9Ground.EXPLICIT_CONSENT and not any(
                c.evidence is not None for c in granted):
            return False
    days = mapping.retention_days or purpose.retention_days
    return not (days is not None and NOW - value.collected_at > timedelta(days=days))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_no_field_leaves_without_purpose_basis_consent_and_explicit_consent(case):  # type: ignore[no-untyped-def]
    mappings, record, subject, destination = case
    decision = minimise(record, subject, destination, mappings, NOW)
    assert set(decision.kept) | set(decision.dropped) == set(record)
    assert not set(decision.kept) & set(decision.dropped)
    for name, value in record.items():
        mapping = mappings.fields.get(name)
        expected = mapping is not None and any(
            allowed_for(p, mappings, mapping, value, subject)
            for p in set(mapping.purposes) & destination)
        assert (name in decision.kept) is expected, (name, decision.dropped.get(name))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_minimising_twice_changes_nothing(case):  # type: ignore[no-untyped-def]
    mappings, record, subject, destination = case
    once = minimise(record, subject, destination, mappings, NOW)
    twice = minimise(once.kept, subject, destination, mappings, NOW)
    assert twice.kept == once.kept and not twice.dropped


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario(), st.data())
def test_withdrawing_a_consent_never_lets_more_through(case, data):  # type: ignore[no-untyped-def]
    mappings, record, subject, destination = case
    if not subject.consents:
        return
    key = data.draw(st.sampled_from(sorted(subject.consents)))
    withdrawn = dict(subject.consents)
    withdrawn[key] = ConsentState(key[0], key[1], ConsentStatus.WITHDRAWN, NOW, "test")
    before = minimise(record, subject, destination, mappings, NOW)
    after = minimise(record, SubjectContext(withdrawn, subject.is_customer), destination,
                     mappings, NOW)
    assert set(after.kept) <= set(before.kept)


def test_each_drop_says_why():
    purposes = {
        "offers": Purpose(legal_basis=LegalBasis.CONSENT, consent_required=True),
        "service": Purpose(legal_basis=LegalBasis.CONTRACT, consent_required=False,
                           art9_ground=Art9Ground.EXPLICIT_CONSENT, retention_days=30),
        "age": Purpose(legal_basis=LegalBasis.LEGAL_OBLIGATION, consent_required=False)}
    fields = {
        "dob": FieldMapping(canonical="dob", category="user.demographic.date_of_birth",
                            purposes=("age",)),
        "name": FieldMapping(canonical="name", category="user.name.first", purposes=("offers",)),
        "note": FieldMapping(canonical="note", category="user.health_and_medical",
                             purposes=("service",)),
        "city": FieldMapping(canonical="city", category="user.contact.address.city",
                             purposes=("service",))}
    mappings = Mappings(purposes, {}, {}, fields)
    fresh, old = FieldValue("x", NOW), FieldValue("x", NOW - timedelta(days=31))
    withdrawn = {("offers", Channel.EMAIL): ConsentState(
        "offers", Channel.EMAIL, ConsentStatus.WITHDRAWN, NOW, "test")}
    decision = minimise({"dob": fresh, "name": fresh, "note": fresh, "city": old,
                         "other": fresh}, SubjectContext(withdrawn, is_customer=True),
                        frozenset({"offers", "service"}), mappings, NOW)
    assert decision.kept == {}
    assert decision.dropped == {
        "dob": Reason.NO_SHARED_PURPOSE, "name": Reason.CONSENT_WITHDRAWN,
        "note": Reason.NO_EXPLICIT_CONSENT, "city": Reason.RETENTION_PASSED,
        "other": Reason.NOT_MAPPED}
