"""Free text about a person in a request's story, on both backends: an admin's reasons
(extend, reject, not applicable) and a partner's acknowledgement detail are shown by
``requests show`` and the evidence pack while the person's key lives; the pack shows
each with its salt, and ``requests evidence --verify`` checks it against the salted
hash the ledger chained. After the erasure the story and a new pack show only the
hashes, a pack made before still verifies offline, and the ledger still verifies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from sqlalchemy import select

from core import freetext, ledger
from core import subject_requests as rq
from core.db import subject_keys
from core.model import RequestKind, RequestStep
from privasync.app.evidence import evidence, story
from privasync.app.subject_requests import act, create
from privasync.cli.main import main
from tests.api.door import ACKS, Door, ack
from tests.core.test_requests_flow import _anywhere

PERSON = "ada.freetext@example.org"
EXTEND_REASON = "Ada Lovelace's file sits in the Lyon branch archive"
REJECT_REASON = "Ada's brother asked in her name; her own identity not proven"
NA_REASON = "Ada was never a customer there (checked by M. Duval)"
ACK_DETAIL = "deleted Ada Lovelace, customer 4471, and her two orders"
PARTNER = "partner:contact_centre"


def _applied(door: Door) -> None:
    for _ in range(3):
        door.container.applier.tick()


def _open(door: Door) -> tuple[str, str, list[str]]:
    """An access request rejected with a reason; an erasure extended, acknowledged by the
    partner and marked not applicable everywhere else but at one destination (which then
    ends it), each with its free text. Returns the two ids and the last destination."""
    c = door.container
    access = create(c, kind=RequestKind.ACCESS, email=PERSON, identity_verified=True,
                    actor="cli", wait=0).request_id
    _applied(door)
    act(c, access, RequestStep.REJECT, actor="cli", reason=REJECT_REASON, wait=0)
    erasure = create(c, kind=RequestKind.ERASURE, email=PERSON, identity_verified=True,
                     actor="cli", wait=0).request_id
    _applied(door)
    act(c, erasure, RequestStep.EXTEND, actor="cli", reason=EXTEND_REASON, months=1, wait=0)
    with c.engine.begin() as conn:  # the erasure went out to the partner
        rq.record(conn, erasure, PARTNER, status=rq.AWAITING_ACK, now=c.clock())
    assert door.partner(ACKS, ack(request_id=erasure, detail=ACK_DETAIL)).status_code == 200
    _applied(door)
    others = sorted(d.name for d in rq_of(door, erasure).destinations if d.name != PARTNER)
    for destination in others[:-1]:
        act(c, erasure, RequestStep.NOT_APPLICABLE, actor="cli", destination=destination,
            reason=NA_REASON, wait=0)
    _applied(door)
    return access, erasure, others


def rq_of(door: Door, request_id: str) -> rq.Request:
    with door.container.engine.connect() as conn:
        found = rq.get(conn, request_id)
    assert found is not None
    return found


def _verify(path: Path) -> list[str]:
    checked = CliRunner().invoke(main, ["requests", "evidence", "--verify", str(path)])
    assert checked.exit_code == 0, checked.output
    return checked.stdout.splitlines()


def _texts(pack: dict[str, Any]) -> dict[str, str]:
    return {e["kind"]: t["text"] for e in pack["entries"] for t in e.get("texts", {}).values()}


def test_free_texts_are_shown_and_proven_until_the_erasure_then_only_their_hashes(
        any_door: Door, tmp_path: Path):
    c = any_door.container
    access, erasure, others = _open(any_door)
    assert rq_of(any_door, erasure).status == rq.IN_PROGRESS
    told = story(c, erasure)
    said = {h["event"]: h for h in told["history"]}
    assert said["request.extended"]["reason"] == EXTEND_REASON
    assert said["request.acknowledged"]["detail"] == ACK_DETAIL
    assert said["request.not_applicable"]["reason"] == NA_REASON
    assert told["extension_reason"] == EXTEND_REASON
    assert story(c, access)["history"][-1]["reason"] == REJECT_REASON
    pack = evidence(c, erasure)
    assert _texts(pack) == {"request.extended": EXTEND_REASON,
                            "request.acknowledged": ACK_DETAIL,
                            "request.not_applicable": NA_REASON}
    assert _texts(evidence(c, access)) == {"request.rejected": REJECT_REASON}
    assert [a["signature"] for a in pack["acknowledgements"]] == ["valid"]
    for text in (EXTEND_REASON, REJECT_REASON, NA_REASON, ACK_DETAIL):  # sealed there
        assert not {"ledger", "ledger_pending", "ledger_texts", "ack_proofs"} & set(
            _anywhere(c.engine, text))
    before = tmp_path / "before.json"
    before.write_text(json.dumps(pack, ensure_ascii=False), encoding="utf-8")
    assert any(line.startswith("holds  texts: 3 free texts") for line in _verify(before))

    act(c, erasure, RequestStep.NOT_APPLICABLE, actor="cli", destination=others[-1],
        reason=NA_REASON, wait=0)
    _applied(any_door)
    assert rq_of(any_door, erasure).status == rq.COMPLETED
    with c.engine.connect() as conn:
        assert conn.execute(select(subject_keys)).first() is None  # the key is destroyed
        assert ledger.verify(conn).ok
    assert any(line.startswith("holds  texts") for line in _verify(before))  # still proof

    after = evidence(c, erasure)
    told_after = story(c, erasure)
    shown = json.dumps([after, told_after, story(c, access), evidence(c, access)],
                       ensure_ascii=False)
    for text in (EXTEND_REASON, REJECT_REASON, NA_REASON, ACK_DETAIL):
        assert text not in shown
        assert _anywhere(c.engine, text) == []
    said = {h["event"]: h for h in told_after["history"]}
    assert set(said["request.extended"]["reason"]) == {freetext.MARK}  # a reason was given
    assert set(said["request.acknowledged"]["detail"]) == {freetext.MARK}
    assert told_after["extension_reason"] == rq.ERASED_TEXT
    assert after["acknowledgements"] == []  # the signed body went with the key (ack_proofs)
    acked = next(e for e in after["entries"] if e["kind"] == "request.acknowledged")
    assert acked["detail"]["proof_sha256"]  # the chained hash of what the partner signed
    late = tmp_path / "after.json"
    late.write_text(json.dumps(after), encoding="utf-8")
    assert any(line.startswith("holds  texts: 0 free texts") for line in _verify(late))


def test_a_text_changed_in_a_pack_is_caught(any_door: Door, tmp_path: Path):
    _, erasure, _ = _open(any_door)
    pack = evidence(any_door.container, erasure)
    shown = next(e for e in pack["entries"] if e["kind"] == "request.extended")
    shown["texts"]["reason"]["text"] = "a reason nobody gave"
    path = tmp_path / "changed.json"
    path.write_text(json.dumps(pack), encoding="utf-8")
    checked = CliRunner().invoke(main, ["requests", "evidence", "--verify", str(path)])
    assert checked.exit_code == 1
    assert "FAILS  texts:" in checked.stdout and "does not hash to" in checked.stdout
