"""Once the retention has deleted done jobs, what they sent still answers a breach scope and
an access bundle's partner disclosures (R20, R22), on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from core import outbox
from core.db import jobs, requests
from privasync.app import access_bundle
from privasync.app.breach import breach_scope
from tests.api.door import Door
from tests.timing import wait_until

PERSON = "dora.disclosed@example.org"
PARTNER = "partner:contact_centre"


def test_a_breach_scope_and_an_access_bundle_still_show_what_pruned_jobs_sent(any_door: Door):
    c = any_door.container
    auth = {"Authorization": f"Bearer {any_door.token('requests:read', 'requests:write')}"}
    made = any_door.client.post("/api/v1/requests", headers=auth, json={
        "kind": "access", "email": PERSON, "identity": "verified"})
    assert made.status_code in (201, 202), made.text
    request_id = made.json()["id"]

    def applied() -> bool:
        c.applier.tick()
        return any_door.client.get(f"/api/v1/requests/{request_id}",
                                   headers=auth).json()["status"] != "received"

    wait_until("the applier applies the request", applied)
    with c.engine.connect() as conn:
        subject = conn.execute(select(requests.c.subject_id).where(
            requests.c.id == request_id)).scalar_one()
    now = datetime.now(UTC)
    sent_at = (now - timedelta(days=10)).replace(hour=12, minute=0, second=0, microsecond=0)
    with c.engine.begin() as conn:
        outbox.add(conn, sent_at, [(outbox.CONSENT, PARTNER, subject, sent_at, None),
                                   (outbox.RECORD, "mailchimp", subject, sent_at, None)])
        conn.execute(update(jobs).where(jobs.c.subject_id == subject,
                                        jobs.c.created_at == sent_at).values(
            status=outbox.DONE, done_at=sent_at, sent="consent"))
        outbox.add(conn, now, [(outbox.CONSENT, "hubspot", "someone else", now, None)])
    assert outbox.prune(c.engine, now - timedelta(days=7)) == 2
    with c.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(jobs).where(
            jobs.c.subject_id == subject, jobs.c.status == outbox.DONE)).scalar_one() == 0

    around = breach_scope(c.engine, c.mappings, c.every_destination(), PARTNER,
                          sent_at - timedelta(hours=1), sent_at + timedelta(hours=1))
    assert around["people_sent"] == 1 and around["fields"] == ["consent"]
    assert [s["why"] for s in around["subjects"] if s["subject_id"] == subject] == [["sent"]]
    for start, end in ((sent_at + timedelta(hours=1), sent_at + timedelta(hours=2)),
                       (sent_at - timedelta(hours=2), sent_at - timedelta(hours=1)),
                       (sent_at + timedelta(days=2), now)):  # the same day, and later
        assert breach_scope(c.engine, c.mappings, c.every_destination(), PARTNER, start,
                            end)["people_sent"] == 0, (start, end)

    partners = {p.partner: p.sent for p in access_bundle.bundle(c, request_id).partners}
    assert [(d.at, d.kind, d.fields) for d in partners["contact_centre"]] == [
        (sent_at, outbox.CONSENT, ["consent"])]
