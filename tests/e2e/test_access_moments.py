"""What do you have on me, with my contact moments, and nobody else's: an access request
on the emulators, Redis and PostgreSQL, whose answer holds the calls logged in HubSpot and
not the record of a family member who shares the person's address in Salesforce: the
records reached through that address wait for an admin's review, and so does the request,
until the last of them is decided."""

from __future__ import annotations

import json
from pathlib import Path

from core import subject_requests as rq
from privasync.demo.stack import Stack
from tests.e2e.conftest import settle, wait_for
from tests.e2e.test_erasure_everywhere import (  # noqa: F401 - fixtures
    EMAIL,
    LAST,
    cli_env,
    known_everywhere,
    relay,
    run,
    stack,
)

SISTER = "Pieterke"


def test_an_access_answer_holds_the_persons_moments_and_not_a_family_members_record(
        cli_env: Stack, tmp_path: Path) -> None:  # noqa: F811 - the imported fixture
    installation = cli_env
    contact, _ = known_everywhere(installation)
    hub, sf = installation.emulators.hubspot, installation.emulators.salesforce
    call = hub.log_engagement("calls", contact, hs_call_title="Delivery",
                              hs_call_body="Asked to deliver on Saturdays",
                              hubspot_owner_id="77")
    sister = sf.create_contact(EMAIL, first_name=SISTER, last_name=LAST)
    sf.add("Task", WhoId=sister, Subject="Loan enquiry", Description="Her own loan")
    settle(installation)

    created = run("requests", "create", "--kind", "access", "--email", EMAIL,
                  "--identity", "verified", "--format", "json")
    assert created.exit_code == 0, created.output
    request_id = json.loads(created.stdout)["id"]

    def request() -> rq.Request | None:
        with installation.container.engine.connect() as conn:
            return rq.get(conn, request_id)

    def answered() -> bool:
        found = request()
        return found is not None and all(d.status in (*rq.FINAL, rq.AWAITING_REVIEW)
                                         for d in found.destinations)

    wait_for("every system answered", answered, timeout=30)
    waiting = request()
    assert waiting is not None and waiting.status == rq.IN_PROGRESS  # the review is ahead
    [salesforce] = [d for d in waiting.destinations if d.name == "salesforce"]
    assert salesforce.status == rq.AWAITING_REVIEW
    out = tmp_path / "bundle.json"
    assert run("requests", "export", request_id, "--out", str(out)).exit_code == 0
    text = out.read_text()
    bundle = json.loads(text)

    systems = {s["system"]: s for s in bundle["systems"]}
    moments = [f for f in systems["hubspot"]["fields"] if f["record"] == f"call:{call}"]
    said = {f["field"]: f["value"] for f in moments}
    assert (said["hs_call_title"], said["hs_call_body"]) == ("Delivery",
                                                             "Asked to deliver on Saturdays")
    assert "hubspot_owner_id" not in said
    assert {f["record_type"] for f in moments} == {"call"}
    # The family member's record and what hangs off it never reach the person.
    assert SISTER not in text and "Her own loan" not in text and sister not in text
    assert "held for review" in systems["salesforce"]["note"]
    shown = run("requests", "show", request_id)
    assert shown.exit_code == 0, shown.output
    assert "held for review" in shown.output and f"Contact:{sister}" in shown.output

    # The sister's contact and her task are dropped, the rest is the person's: the decision
    # on the last held record completes the request.
    held = list(salesforce.receipt["held_for_review"])
    theirs = [r for r in held if r == f"Contact:{sister}" or r.startswith("Task:")]
    decided = run("requests", "review", request_id, "--reason", "the sister's own records",
                  *(x for r in held for x in (("--exclude" if r in theirs else "--include"),
                                              r)))
    assert decided.exit_code == 0, decided.output
    wait_for("the request completed once the last held record was decided",
             lambda: getattr(request(), "status", None) == rq.COMPLETED, timeout=30)
