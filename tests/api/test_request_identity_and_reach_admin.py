"""The admin API and the CLI: whoever records a request says whether the person's identity
was checked (nothing is assumed); an unverified request asks for proof and is shown as
identity overdue once the person's time has passed (metric included); a request says
which systems it covers and which known ones were never asked; breach scoping counts
who a destination holds according to privasync's references, as well as what it sent."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from prometheus_client import generate_latest
from sqlalchemy import select, update

from core import outbox
from core.db import jobs, system_refs
from core.errors import NotFound
from core.model import SubjectHint, SystemRef
from privasync.app.breach import breach_scope
from privasync.cli.context import build as _build
from privasync.cli.main import main
from tests.api.door import Door
from tests.timing import scaled, wait_until

MAPPINGS = Path(__file__).parents[2] / "mappings"
PERSON = "ida.identity@example.org"


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def cli_env(tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Only the partner configured: HubSpot, Mailchimp and Salesforce are not."""
    monkeypatch.setenv("PRIVASYNC_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("PRIVASYNC_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("PRIVASYNC_MAPPINGS_DIR", str(MAPPINGS))
    monkeypatch.setenv("PRIVASYNC_PARTNER_CONTACT_CENTRE_SECRET", "partner-secret")
    return tmp_path


def _apply(request_id: str) -> None:
    container = _build()
    try:
        def applied() -> bool:
            container.applier.tick()
            return json.loads(run("requests", "show", request_id, "--format",
                                  "json").stdout)["status"] != "received"
        wait_until("the applier applies the request", applied)
    finally:
        container.close()


# -- identity is stated, never assumed --------------------------------------------------
@pytest.mark.parametrize("body", [{"kind": "erasure", "email": PERSON},
                                  {"kind": "erasure", "email": PERSON, "identity": True},
                                  {"kind": "erasure", "email": PERSON, "identity": "yes"}])
def test_the_api_refuses_a_request_that_does_not_state_identity(door: Door, body: dict):  # type: ignore[type-arg]
    auth = {"Authorization": f"Bearer {door.token('requests:write')}"}
    before = door.rows()
    answer = door.client.post("/api/v1/requests", json=body, headers=auth)
    assert answer.status_code == 422, answer.text
    assert answer.json()["fields"][0]["field"] == "identity"
    assert "identity" in answer.json()["reason"]
    assert door.rows() == before  # nothing half-stored


def test_the_api_takes_a_request_that_states_identity(door: Door):
    auth = {"Authorization": f"Bearer {door.token('requests:write')}"}
    for identity in ("verified", "unverified"):
        answer = door.client.post("/api/v1/requests", json={
            "kind": "access", "email": PERSON, "identity": identity}, headers=auth)
        assert answer.status_code in (201, 202), answer.text


def test_the_cli_refuses_a_request_that_does_not_state_identity(cli_env: Path):
    said = run("requests", "create", "--kind", "erasure", "--email", PERSON)
    assert said.exit_code == 2, said.output
    assert len(said.output.strip().splitlines()) == 1 and "--identity" in said.output
    assert "Traceback" not in said.output and PERSON not in said.output
    assert json.loads(run("requests", "list", "--format", "json").stdout) == []
    wrong = run("requests", "create", "--kind", "erasure", "--email", PERSON,
                "--identity", "maybe")
    assert wrong.exit_code == 2


# -- asked for proof: the limit, the flag, the metric -----------------------------------
def test_an_unverified_request_asks_for_proof_and_is_flagged_once_its_time_passes(
        cli_env: Path, monkeypatch: pytest.MonkeyPatch):
    wait = scaled(2.0)
    monkeypatch.setenv("PRIVASYNC_IDENTITY_WAIT_DAYS", str(wait / 86400))
    created = run("requests", "create", "--kind", "erasure", "--email", PERSON,
                  "--identity", "unverified", "--format", "json")
    assert created.exit_code == 0, created.output
    request_id = json.loads(created.stdout)["id"]
    _apply(request_id)
    told = json.loads(run("requests", "show", request_id, "--format", "json").stdout)
    assert told["status"] == "identity_pending" and told["clock_paused"]
    asked = datetime.fromisoformat(told["identity_due_at"]) - timedelta(seconds=wait)
    assert abs((asked - datetime.fromisoformat(told["received_at"])).total_seconds()) < 60
    assert "identity asked for, proof due" in run("requests", "show", request_id).output
    assert any(h["event"] == "request.identity_asked" for h in told["history"])

    def flagged() -> bool:
        return "IDENTITY OVERDUE" in run("requests", "list", "--overdue").output
    wait_until("the request is shown as identity overdue", flagged)
    late = json.loads(run("requests", "show", request_id, "--format", "json").stdout)
    assert late["identity_overdue"] and late["status"] == "identity_pending"  # not rejected
    assert "IDENTITY OVERDUE: verify or reject it" in run("requests", "show", request_id).output
    container = _build()
    try:
        scraped = generate_latest(container.metrics.registry).decode()
    finally:
        container.close()
    assert "privasync_requests_identity_overdue 1.0" in scraped


# -- which systems a request covers, and which it never reached -------------------------
def test_a_request_shows_the_known_systems_never_asked_in_show_and_its_evidence(
        cli_env: Path):
    created = run("requests", "create", "--kind", "erasure", "--email", PERSON,
                  "--identity", "verified", "--format", "json")
    request_id = json.loads(created.stdout)["id"]
    _apply(request_id)
    told = json.loads(run("requests", "show", request_id, "--format", "json").stdout)
    assert told["covers"] == ["partner:contact_centre"]
    assert told["not_configured"] == ["hubspot", "mailchimp", "salesforce"]
    shown = run("requests", "show", request_id).output
    assert "not configured here, never asked: hubspot, mailchimp, salesforce" in shown
    container = _build()
    try:
        def chained() -> bool:
            container.applier.tick()
            return json.loads(run("requests", "evidence", request_id).stdout)[
                "segment"] != []
        wait_until("the request's entries are chained", chained, tolerate=(NotFound,))
    finally:
        container.close()
    pack = json.loads(run("requests", "evidence", request_id).stdout)
    assert pack["request"]["not_configured"] == ["hubspot", "mailchimp", "salesforce"]
    received = next(e for e in pack["entries"] if e["kind"] == "request.received")
    assert received["detail"]["not_configured"] == ["hubspot", "mailchimp", "salesforce"]


def test_the_api_request_view_says_what_the_request_covers_and_what_it_never_reached(
        door: Door):
    auth = {"Authorization": f"Bearer {door.token('requests:read', 'requests:write')}"}
    made = door.client.post("/api/v1/requests", json={
        "kind": "erasure", "email": PERSON, "identity": "verified"}, headers=auth)
    request_id = made.json()["id"]
    door.container.applier.tick()
    view = door.client.get(f"/api/v1/requests/{request_id}", headers=auth).json()
    # HubSpot is set up here to receive webhooks only: nothing can be sent to it.
    assert view["not_configured"] == ["hubspot", "salesforce"]
    assert view["covers"] == [d["destination"] for d in view["destinations"]] == [
        "mailchimp", "partner:analytics", "partner:contact_centre"]
    evidence = door.client.get(f"/api/v1/requests/{request_id}/evidence", headers=auth)
    assert evidence.json()["request"]["not_configured"] == ["hubspot", "salesforce"]


# -- breach scope: sent and held, each person once --------------------------------------
def test_breach_scope_counts_who_the_destination_holds_as_well_as_what_was_sent(door: Door):
    c = door.container
    now = datetime.now(UTC)
    start, end = now - timedelta(days=1), now + timedelta(days=1)

    def person(name: str, *refs: SystemRef, at: datetime = now) -> str:
        with c.engine.begin() as conn:
            subject, _ = c.identity.resolve(conn, SubjectHint(email=f"{name}@example.org"), at)
            for ref in refs:
                c.identity.add_ref(conn, subject, ref, at)
        return subject

    def sent(subject: str) -> None:
        with c.engine.begin() as conn:
            outbox.add(conn, now, [(outbox.CONSENT, "mailchimp", subject, now, None)])
            conn.execute(update(jobs).where(jobs.c.subject_id == subject).values(
                status=outbox.DONE, done_at=now, sent="email"))

    both = person("both", SystemRef("mailchimp", "member:both"))
    held = person("held", SystemRef("mailchimp", "member:held"))
    only_sent = person("sent")  # e.g. erased since: its references went with its key
    person("elsewhere", SystemRef("hubspot", "contact:7"))
    person("later", SystemRef("mailchimp", "member:later"), at=end + timedelta(hours=1))
    sent(both)
    sent(only_sent)
    found = breach_scope(c.engine, c.mappings, c.every_destination(), "mailchimp", start, end)
    assert (found["people"], found["people_sent"], found["people_held"]) == (3, 2, 2)
    why = {s["subject_id"]: s["why"] for s in found["subjects"]}
    assert why == {both: ["sent", "held"], held: ["held"], only_sent: ["sent"]}
    assert set(found["counts"]) == {"people", "people_sent", "people_held"}
    with c.engine.connect() as conn:
        assert conn.execute(select(system_refs.c.system).where(
            system_refs.c.system == "hubspot")).first() is not None
    # HubSpot is not a destination here, but privasync holds references there: it answers.
    auth = {"Authorization": f"Bearer {door.token('audit:read')}"}
    answer = door.client.get("/api/v1/breach-scope", headers=auth, params={
        "destination": "hubspot", "from": start.isoformat(), "to": end.isoformat()})
    assert answer.status_code == 200, answer.text
    assert (answer.json()["people"], answer.json()["people_held"]) == (1, 1)
    assert "example.org" not in answer.text
