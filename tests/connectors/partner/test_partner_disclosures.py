"""A partner is asked to erase what privasync sent it, through the core's own bookkeeping:
the address an update carried is remembered at the partner, the erasure names only that."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from connectors.partner import PartnerConnector
from core.db import identifiers, system_refs
from core.delivery import Deliverer
from core.fulfil import Fulfiller
from core.model import (
    Channel,
    ConsentChange,
    ConsentChanged,
    ConsentStatus,
    EventMeta,
    RequestKind,
    RequestReceived,
    SubjectHint,
    SubjectSeen,
    SystemRef,
)
from privasync.emulators.partner import PartnerEmulator
from tests.core.conftest import make_core
from tests.emulators.conftest import Sink, serve
from tests.timing import scaled

PARTNER = "partner:contact_centre"
SENT, NEVER_SENT = "Ada.Sent@example.org", "ada.private@example.org"
CONTACT = SystemRef("hubspot", "contact:1")
NOW = datetime(2026, 11, 1, 13, 0, tzinfo=UTC)


@pytest.fixture
def partner(sink: Sink) -> Iterator[PartnerEmulator]:
    yield from serve(PartnerEmulator(secret="s", ack_url=f"{sink.url}/acks", auto_ack=False))


def test_a_person_with_two_addresses_is_erased_at_the_partner_with_the_one_it_was_sent(
        engine: Engine, partner: PartnerEmulator) -> None:
    core = make_core(engine, clock=lambda: NOW, erasure=(PARTNER,))
    connector = PartnerConnector(name="contact_centre",
                                 partner=core.mappings.partners["contact_centre"],
                                 url=f"{partner.url}{partner.path}", secret="s",
                                 keys=core.keyring, timeout=scaled(5))
    deliverer = Deliverer(engine, {PARTNER: connector}, lambda n, r: 1.0, lambda: NOW,
                          holder="worker:test", keyring=core.keyring)
    Fulfiller(deliverer, core.keyring, erasure={PARTNER: connector}, exports={},
              notifier=None, ack_within={}, export_keep=timedelta(days=30))

    core.accept([ConsentChanged(EventMeta("hubspot", "optout", NOW),
                                SubjectHint(ref=CONTACT, email=SENT),
                                (ConsentChange("offers", Channel.EMAIL,
                                               ConsentStatus.WITHDRAWN),))], NOW)
    deliverer.run(PARTNER)
    with engine.connect() as conn:
        subject = conn.execute(select(system_refs.c.subject_id).where(
            system_refs.c.system == "hubspot")).scalar_one()
    assert (partner.state(subject) or {}).get("email") == SENT.lower()

    # A second address arrives later; no update carries it to the partner.
    core.accept([SubjectSeen(EventMeta("hubspot", "seen", NOW),
                             SubjectHint(ref=CONTACT, email=NEVER_SENT))], NOW)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(identifiers)).scalar_one() == 2

    request_id = str(uuid.uuid4())
    core.accept([RequestReceived(EventMeta("admin", "r1", NOW, kind="test"),
                                 SubjectHint(email=NEVER_SENT), RequestKind.ERASURE,
                                 request_id, actor="cli")], NOW)
    deliverer.run(PARTNER)
    asked = partner.erasure(request_id)
    assert asked is not None and asked["subject_id"] == subject
    assert asked["emails"] == [SENT.lower()]
