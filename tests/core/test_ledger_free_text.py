"""A free text in a ledger entry (an admin's reason, a partner's words) is chained only as
a salted hash, on both backends: the chain holds no text and no salt, two equal texts
hash apart, the hash is HMAC-SHA256 under the salt (so a pack showing text and salt can
be checked anywhere), and once the person's key is destroyed the chain still verifies
while neither the text nor its salt is left to confirm a guess with."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid

from sqlalchemy import func, select

from core import freetext, ledger
from core import subject_requests as rq
from core.db import ledger_texts, subject_keys
from core.dsr import NOTIFIER
from core.model import RequestAction, RequestKind, RequestReceived, RequestStep, SubjectHint
from tests.core.test_requests_flow import EMAIL, Flow, _anywhere, meta, subscribe

SHORT = "not a customer there"  # short and guessable: the case the salt is for


def test_a_free_text_is_chained_as_a_salted_hash_that_outlives_no_key(
        engine):  # type: ignore[no-untyped-def]
    flow = Flow(engine)
    subscribe(flow)
    rid = str(uuid.uuid4())
    flow.event(RequestReceived(meta("lt-e"), SubjectHint(email=EMAIL), RequestKind.ERASURE,
                               rid))
    for n, destination in enumerate(("hubspot", "partner:contact_centre")):
        flow.event(RequestAction(meta(f"lt-na{n}"), rid, RequestStep.NOT_APPLICABLE,
                                 destination=destination, reason=SHORT, actor="cli"))
    with engine.connect() as conn:
        details = [json.loads(d) for d in conn.execute(
            select(ledger.ledger.c.detail).where(
                ledger.ledger.c.kind == "request.not_applicable")).scalars()]
        hashes = [freetext.marks(d)["reason"] for d in details]
        opened = freetext.opened(conn, flow.core.keyring, hashes)
    assert len(set(hashes)) == 2  # equal texts, unlinkable hashes
    for h in hashes:
        assert opened[h].text == SHORT
        salt = bytes.fromhex(opened[h].salt)
        assert len(salt) == 32
        assert hmac.new(salt, SHORT.encode(), hashlib.sha256).hexdigest() == h
        assert h != hashlib.sha256(SHORT.encode()).hexdigest()
    salts = [opened[h].salt for h in hashes]
    for secret in (SHORT, *salts):  # sealed, never in the ledger in clear, even before
        assert not {"ledger", "ledger_pending", "ledger_texts"} & set(_anywhere(engine, secret))
    assert _anywhere(engine, salts[0]) == []  # the salt only sealed (the text is also on
    # the request's row, for the admin, until the erasure)

    flow.deliver(NOTIFIER)
    assert flow.request(rid).status == rq.COMPLETED
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(subject_keys)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(ledger_texts)).scalar_one() == 0
        report = ledger.verify(conn)
        after = [json.loads(d) for d in conn.execute(
            select(ledger.ledger.c.detail).where(
                ledger.ledger.c.kind == "request.not_applicable")).scalars()]
    assert report.ok and report.entries == report.intact
    assert after == details  # the entries still say a reason was given, and which hash
    for secret in (SHORT, *salts):  # nothing left to read, or to confirm a guess with
        assert _anywhere(engine, secret) == []
