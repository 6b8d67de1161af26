"""The erasure log, and a restored backup checked against it, on both backends.

A backup taken before an erasure holds the person's wrapped key: restored, it would
give them back. Each completed erasure is logged outside the database (keyed hashes
only), and ``core.restore.replay`` erases again whoever a restored backup brought back.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from core import erasures, ledger, restore
from core import subject_requests as rq
from core.applier import Applier
from core.db import (
    erasure_log_pending,
    identifiers,
    jobs,
    ledger_pending,
    make_engine,
    subject_keys,
    suppression,
    system_refs,
)
from core.erasure_record import ErasureRecord
from core.model import (
    Channel,
    ConsentChange,
    ConsentChanged,
    ConsentStatus,
    EventMeta,
    RequestAcknowledged,
    RequestKind,
    RequestReceived,
    SubjectHint,
    SystemRef,
)
from tests.backups import backup
from tests.backups import restore as restore_db
from tests.core.conftest import Core, make_core
from tests.core.test_requests_flow import EMAIL, NOTIFIER, NOW, Flow, count, meta

REF = SystemRef("hubspot", "contact:101")


class MemoryLog:
    """An erasure log that can be made to fail, as a full disk or a lost volume would."""

    def __init__(self) -> None:
        self.entries: list[ErasureRecord] = []
        self.failing = False
        self.made = False

    def ensure(self) -> None:
        self.made = True

    def append(self, records: Sequence[ErasureRecord]) -> None:
        if self.failing:
            raise OSError(28, "No space left on device")
        known = {e.request_id for e in self.entries}
        self.entries += [r for r in records if r.request_id not in known]

    def read(self) -> list[ErasureRecord]:
        return list(self.entries)


def with_log(core: Core, log: MemoryLog | None) -> Core:
    """The same core, its applier writing to ``log``."""
    old = core.applier
    core.applier = Applier(core.engine, core.keyring, core.mappings, old.routes,
                           clock=old.clock, holder=old.holder, erasure_log=log)
    return core


def logged_flow(engine: Engine, log: MemoryLog | None) -> Flow:
    flow = Flow(engine)
    with_log(flow.core, log)
    return flow


def known_person(flow: Flow) -> None:
    flow.event(ConsentChanged(EventMeta("hubspot", "optout", NOW),
                              SubjectHint(ref=REF, email=EMAIL),
                              (ConsentChange("offers", Channel.EMAIL,
                                             ConsentStatus.WITHDRAWN),)))


def erase(flow: Flow) -> str:
    """An erasure from request to shredding: both systems, the ack, the person told."""
    rid = str(uuid.uuid4())
    flow.event(RequestReceived(meta(f"r-{rid}"), SubjectHint(email=EMAIL),
                               RequestKind.ERASURE, rid, actor="cli"))
    flow.deliver("hubspot", "partner:contact_centre")
    flow.event(RequestAcknowledged(EventMeta("partner:contact_centre", f"ack-{rid}", NOW),
                                   "partner:contact_centre", rid, True, "deleted", "ab" * 32))
    flow.deliver(NOTIFIER)
    assert flow.request(rid).status == rq.COMPLETED
    return rid


@pytest.fixture
def log() -> MemoryLog:
    return MemoryLog()


@pytest.fixture
def flow(engine: Engine, log: MemoryLog) -> Flow:
    return logged_flow(engine, log)


def digests(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(select(suppression.c.digest)).scalars())


def test_a_completed_erasure_is_logged_with_keyed_hashes_and_no_address(
        flow: Flow, log: MemoryLog):
    known_person(flow)
    with flow.core.engine.connect() as conn:
        subject = conn.execute(select(subject_keys.c.subject_id)).scalar_one()
    rid = erase(flow)
    [entry] = log.entries
    keyring = flow.core.keyring
    assert entry.request_id == rid and entry.subject_ids == (subject,)
    assert entry.completed_at == NOW
    assert entry.identifiers == (("email", keyring.email_digest(EMAIL)),)
    # The suppression list holds exactly what the log does: the address and the record id.
    assert {d for _, d in (*entry.identifiers, *entry.refs)} == digests(flow.core.engine)
    assert entry.refs == (("hubspot", erasures.ref_digest(
        keyring, "hubspot", "contact:101", entry.digest_version)),)
    assert entry.destinations == ("hubspot", "partner:contact_centre")
    line = json.dumps(entry.to_json())
    assert EMAIL.lower() not in line.lower() and "contact:101" not in line
    assert ErasureRecord.from_json(json.loads(line)) == entry
    assert count(flow.core.engine, erasure_log_pending) == 0


def test_an_erasure_the_log_cannot_take_stays_queued_and_is_appended_later(
        flow: Flow, log: MemoryLog):
    known_person(flow)
    log.failing = True
    rid = erase(flow)
    assert log.entries == [] and count(flow.core.engine, erasure_log_pending) == 1
    # Monitoring sees it waiting, and for how long (the PrivasyncErasureLogBehind alert).
    later = NOW + timedelta(minutes=20)
    assert scraped(flow.core.engine, later) == (1.0, 1200.0)
    log.failing = False
    flow.core.apply()
    assert [e.request_id for e in log.entries] == [rid]
    assert count(flow.core.engine, erasure_log_pending) == 0
    assert scraped(flow.core.engine, later) == (0.0, 0.0)


def scraped(engine: Engine, now: datetime) -> tuple[float, float]:
    """The erasure log's two gauges as /metrics exports them."""
    from prometheus_client import CollectorRegistry

    from workers.metrics import _FromDatabase

    registry = CollectorRegistry()
    registry.register(_FromDatabase(engine, lambda: now))
    pending = registry.get_sample_value("privasync_erasure_log_pending")
    age = registry.get_sample_value("privasync_erasure_log_oldest_age_seconds")
    assert pending is not None and age is not None
    return pending, age


def test_an_applier_started_after_a_crash_appends_what_was_queued(
        engine: Engine, log: MemoryLog):
    flow = logged_flow(engine, None)  # the process that erased died before appending
    known_person(flow)
    rid = erase(flow)
    assert count(engine, erasure_log_pending) == 1
    with_log(make_core(engine, holder="applier:next"), log).applier.tick()
    assert [e.request_id for e in log.entries] == [rid]
    # A second append of the same erasure (a crash after the append) adds nothing.
    erasures.flush(engine, log)
    log.append(log.entries)
    assert len(log.entries) == 1


def restored(engine: Engine, taken: Path, name: str) -> Engine:
    return make_engine(restore_db(str(engine.url.render_as_string(hide_password=False)),
                                  taken, name))


def test_a_restored_backup_from_before_the_erasure_is_erased_again(
        flow: Flow, log: MemoryLog, tmp_path: Path):
    known_person(flow)
    engine = flow.core.engine
    url = engine.url.render_as_string(hide_password=False)
    taken = backup(url, tmp_path / "before-erasure.bak")
    rid = erase(flow)
    erased_digests = digests(engine)

    back = restored(engine, taken, "restored")
    try:
        # The backup gives the person back: key, address, ref, no suppression.
        assert count(back, subject_keys) == 1 and count(back, suppression) == 0
        assert count(back, system_refs) == 1
        report = restore.replay(back, flow.core.keyring, log.read(), lambda: NOW
                                + timedelta(days=40))
        [done] = report.replayed
        assert done.request_id == rid and len(done.subjects) == 1
        assert done.suppression_added == 2 and done.request == "recorded"  # address, ref
        assert count(back, subject_keys) == count(back, identifiers) == 0
        assert count(back, system_refs) == 0
        assert digests(back) == erased_digests
        with back.connect() as conn:
            found = rq.get(conn, rid)
            kinds = list(conn.execute(select(ledger_pending.c.kind)).scalars())
        assert found is not None and found.status == rq.COMPLETED
        assert restore.RE_ERASED in kinds
        # Run again: nothing left to do.
        assert restore.replay(back, flow.core.keyring, log.read(), lambda: NOW).clean
        # And the person coming back through a sync is suppressed (R18).
        again = make_core(back, holder="applier:restored")
        again.store([ConsentChanged(EventMeta("mailchimp", "resub", NOW + timedelta(days=41)),
                                    SubjectHint(email=EMAIL.upper()),
                                    (ConsentChange("offers", Channel.EMAIL,
                                                   ConsentStatus.GRANTED),))], NOW)
        again.apply()
        assert count(back, subject_keys) == 0
        with back.connect() as conn:
            assert ledger.verify(conn).ok
    finally:
        back.dispose()


def test_a_backup_taken_mid_request_has_its_request_completed_and_jobs_cancelled(
        flow: Flow, log: MemoryLog, tmp_path: Path):
    known_person(flow)
    engine = flow.core.engine
    rid = str(uuid.uuid4())
    flow.event(RequestReceived(meta("r-mid"), SubjectHint(email=EMAIL), RequestKind.ERASURE,
                               rid, actor="cli"))
    taken = backup(engine.url.render_as_string(hide_password=False), tmp_path / "mid.bak")
    flow.deliver("hubspot", "partner:contact_centre")
    flow.event(RequestAcknowledged(EventMeta("partner:contact_centre", "ack-mid", NOW),
                                   "partner:contact_centre", rid, True, "deleted", "ab" * 32))
    flow.deliver(NOTIFIER)

    back = restored(engine, taken, "mid")
    try:
        waiting = count(back, jobs, jobs.c.status == "pending")
        assert count(back, jobs, jobs.c.status == "pending", jobs.c.kind == "erasure") == 2
        [done] = restore.replay(back, flow.core.keyring, log.read(), lambda: NOW).replayed
        assert done.request == "completed" and done.cancelled == waiting
        assert done.suppression_added == 0  # the backup had the suppression already
        assert count(back, jobs, jobs.c.status == "pending") == 0
        assert count(back, subject_keys) == 0
        with back.connect() as conn:
            found = rq.get(conn, rid)
        assert found is not None and found.status == rq.COMPLETED
    finally:
        back.dispose()


def test_a_person_the_backup_never_knew_gets_the_suppression_back(
        flow: Flow, log: MemoryLog, tmp_path: Path):
    engine = flow.core.engine
    taken = backup(engine.url.render_as_string(hide_password=False), tmp_path / "empty.bak")
    known_person(flow)
    rid = erase(flow)

    back = restored(engine, taken, "empty")
    try:
        [done] = restore.replay(back, flow.core.keyring, log.read(), lambda: NOW).replayed
        assert done.subjects == [] and done.suppression_added == 2  # address, record id
        assert done.request == "recorded"
        assert digests(back) == digests(engine)
        with back.connect() as conn:
            assert set(conn.execute(select(suppression.c.request_id)).scalars()) == {rid}
    finally:
        back.dispose()


def test_a_database_that_agrees_with_the_log_needs_nothing(flow: Flow, log: MemoryLog):
    known_person(flow)
    erase(flow)
    report = restore.replay(flow.core.engine, flow.core.keyring, log.read(), lambda: NOW)
    assert report.checked == 1 and report.clean
