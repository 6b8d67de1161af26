"""The applier on both backends: dedupe, ordering, echoes, evidence, merges, the ledger."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

from sqlalchemy import func, select, text

from core import ledger
from core.crypto import Keyring
from core.db import consents, events, jobs, requests
from core.keys import subject_key
from core.model import (
    Channel,
    ConsentChange,
    ConsentChanged,
    ConsentStatus,
    ErasureRequested,
    EventMeta,
    Evidence,
    SubjectHint,
    SubjectsMerged,
    SystemRef,
)
from tests.core.conftest import at

EMAIL = "Jan.Jansen@Example.NL"
W, G = ConsentStatus.WITHDRAWN, ConsentStatus.GRANTED
EVIDENCE = Evidence("mailchimp", "mailchimp_signup_form", None, "mailchimp:list:x:member:y")


def change(source: str, eid: str, minute: int, status: ConsentStatus, *,
           ref: SystemRef | None = None, email: str | None = EMAIL,
           evidence: Evidence | None = None, purposes=("product_news", "offers")):  # type: ignore[no-untyped-def]
    return ConsentChanged(
        meta=EventMeta(source, eid, at(minute), kind="test"),
        subject=SubjectHint(ref=ref, email=email),
        changes=tuple(ConsentChange(p, Channel.EMAIL, status) for p in purposes),
        evidence=evidence)


def count(engine, table) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def job_targets(engine) -> list[str]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return sorted(conn.execute(select(jobs.c.destination)).scalars())


NOW = datetime(2026, 11, 1, 13, 0, tzinfo=UTC)


def test_an_unsubscribe_plans_one_job_per_other_destination(engine, core):  # type: ignore[no-untyped-def]
    result = core.accept([change("hubspot", "e1", 1, W)], NOW)
    assert result.outcomes == Counter(applied=1)
    assert job_targets(engine) == ["mailchimp", "partner:contact_centre", "salesforce"]
    assert result.jobs == 3 and result.report.destinations == {
        "mailchimp", "partner:contact_centre", "salesforce"}
    assert count(engine, consents) == 2


def test_the_same_delivery_twice_changes_nothing_the_second_time(engine, core):  # type: ignore[no-untyped-def]
    core.accept([change("hubspot", "e1", 1, W)], NOW)
    assert core.store([change("hubspot", "e1", 1, W)], NOW).duplicate  # the same bytes
    # A redelivery with other bytes (HubSpot counts its attempts in the body):
    again = core.accept([change("hubspot", "e1", 1, W), change("hubspot", "e1", 1, W)], NOW)
    assert (again.outcomes, again.jobs) == (Counter(duplicate=2), 0)
    assert count(engine, events) == 1 and count(engine, jobs) == 3


def test_an_older_subscribe_after_a_newer_unsubscribe_changes_nothing(engine, core):  # type: ignore[no-untyped-def]
    core.accept([change("mailchimp", "u", 10, W)], NOW)
    late = core.accept([change("mailchimp", "s", 5, G, evidence=EVIDENCE)], NOW)
    assert late.outcomes == Counter(stale=1) and late.jobs == 0
    with engine.connect() as conn:
        assert set(conn.execute(select(consents.c.status)).scalars()) == {"withdrawn"}


def test_our_own_write_echoing_back_causes_no_jobs(engine, core):  # type: ignore[no-untyped-def]
    core.accept([change("hubspot", "e1", 1, W)], NOW)
    echo = core.accept([change("salesforce", "Contact:1:echo", 2, W)], NOW)
    assert echo.outcomes == Counter(unchanged=1) and echo.jobs == 0
    with engine.connect() as conn:  # an echo leaves no event row and no ledger entry
        assert conn.execute(text("SELECT count(*) FROM events WHERE source = 'salesforce'")
                            ).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM ledger")).scalar_one() == 1


def test_a_grant_without_evidence_is_flagged_and_not_propagated(engine, core):  # type: ignore[no-untyped-def]
    core.accept([change("hubspot", "e1", 1, W)], NOW)
    flagged = core.accept([change("salesforce", "Contact:1:on", 5, G)], NOW)
    assert flagged.outcomes == Counter(grant_without_evidence=1) and flagged.jobs == 0
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT kind, subject_id, detail FROM ledger ORDER BY seq")).all()
        assert set(conn.execute(select(consents.c.status)).scalars()) == {"withdrawn"}
        flagged = [r for r in rows if r.kind == "consent.grant_flagged"]
        sid = conn.execute(text("SELECT subject_id FROM subject_keys")).scalar_one()
        key = subject_key(conn, core.keyring, sid)
    assert [r.kind for r in rows] == ["consent.withdrawn", "consent.grant_flagged"]
    detail = json.loads(Keyring.decrypt(key, flagged[0].detail) or b"{}")
    assert detail["changes"] == [{"purpose": "product_news", "channel": "email"},
                                 {"purpose": "offers", "channel": "email"}]
    assert detail["source"] == "salesforce"


def test_not_opted_out_on_a_new_record_is_neither_consent_nor_flagged(engine, core):  # type: ignore[no-untyped-def]
    result = core.accept([change("salesforce", "Contact:9:new", 1, G)], NOW)
    assert result.outcomes == Counter(grant_without_evidence=1) and result.jobs == 0
    assert count(engine, consents) == 0
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM ledger")).scalar_one() == 0


def test_an_evidenced_grant_is_applied_and_propagated(engine, core):  # type: ignore[no-untyped-def]
    result = core.accept([change("mailchimp", "s", 1, G, evidence=EVIDENCE)], NOW)
    assert result.outcomes == Counter(applied=1)
    assert job_targets(engine) == ["hubspot", "partner:contact_centre", "salesforce"]


def test_an_event_that_cannot_be_applied_is_recorded_and_the_rest_applies(engine, core):  # type: ignore[no-untyped-def]
    good = change("hubspot", "e1", 1, W)
    bad = change("hubspot", "e2", 2, W, purposes=("astrology",), email="b@example.org")
    result = core.accept([good, bad], NOW)
    assert result.outcomes == Counter(applied=1, invalid=1)
    with engine.connect() as conn:
        recorded = dict(conn.execute(select(events.c.source_event_id, events.c.outcome)).all())
        assert conn.execute(select(consents.c.purpose).distinct()).scalars().all()
    assert recorded == {"e1": "applied", "e2": "invalid"}


def test_a_privacy_deletion_opens_an_erasure_request_due_in_a_calendar_month(engine, core):  # type: ignore[no-untyped-def]
    ref = SystemRef("hubspot", "contact:7")
    core.accept([change("hubspot", "e1", 1, W, ref=ref)], NOW)
    received = datetime(2026, 1, 31, 9, 0, tzinfo=UTC)
    core.accept([ErasureRequested(EventMeta("hubspot", "pd", at(3)),
                                  SubjectHint(ref=ref))], received)
    with engine.connect() as conn:
        row = conn.execute(select(requests)).one()
    assert row.kind == "erasure" and row.due_at == datetime(2026, 2, 28, 9, 0, tzinfo=UTC)


def test_a_merge_carries_the_merged_records_newer_withdrawal(engine, core):  # type: ignore[no-untyped-def]
    primary, merged = SystemRef("hubspot", "contact:1"), SystemRef("hubspot", "contact:2")
    core.accept([change("mailchimp", "g", 1, G, ref=primary, email="a@example.org",
                        evidence=EVIDENCE)], NOW)
    core.accept([change("salesforce", "w", 2, W, ref=merged, email="b@example.org")], NOW)
    result = core.accept([SubjectsMerged(EventMeta("hubspot", "m", at(3)),
                                         SubjectHint(ref=primary), (merged,))], NOW)
    assert result.outcomes == Counter(merged=1) and result.jobs
    with engine.connect() as conn:
        winner = core.identity.by_ref(conn, primary)
        assert winner == core.identity.by_ref(conn, merged)
        assert core.identity.email(conn, winner) == "a@example.org"
        assert core.identity.by_email(conn, "b@example.org") == winner
        statuses = set(conn.execute(select(consents.c.status)
                                    .where(consents.c.subject_id == winner)).scalars())
    assert statuses == {"withdrawn"}


def test_no_email_address_is_stored_in_clear(engine, core):  # type: ignore[no-untyped-def]
    core.accept([change("hubspot", "e1", 1, W)], NOW)
    with engine.connect() as conn:
        for table in ("identifiers", "subjects", "consents", "events", "jobs", "ledger",
                      "inbox"):
            for row in conn.execute(text(f"SELECT * FROM {table}")):
                assert "jansen" not in repr(row).lower(), table
        sid = core.identity.by_email(conn, EMAIL)
        assert core.identity.email(conn, sid) == EMAIL.lower()


def test_the_ledger_chain_verifies_and_detects_tampering(engine, core):  # type: ignore[no-untyped-def]
    core.accept([change("hubspot", "e1", 1, W),
                 change("hubspot", "e2", 2, W, email="someone.else@example.org")], NOW)
    with engine.connect() as conn:
        report = ledger.verify(conn)
    assert report.ok and report.entries == 2
    with engine.begin() as conn:
        conn.execute(text("UPDATE ledger SET kind = 'consent.granted' WHERE seq = 1"))
    with engine.connect() as conn:
        assert ledger.verify(conn).first_bad_seq == 1
