"""Records held for review, decided over the admin API and the CLI on the app alone: a
record not held, one decided already, or a review without a reason is refused (409 or
422 over HTTP, exit 2 in one line from the CLI) and stores nothing; an included record
is in the access bundle afterwards, an excluded one is not, and ``requests show`` says
which was decided, by whom and why. The request stays open, its system awaiting review,
until the last held record is decided."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from core.model import (
    ExportedField,
    ExportResult,
    HeldForReview,
    PersonAt,
)
from privasync.app.bootstrap import build
from privasync.cli.main import main
from tests.api.door import Door, door_environ, door_settings

PERSON = "ada.review@example.org"
MINE, THEIRS = "Contact:003A", "Contact:003B"
REASON = "Contact:003A is Ada's own shop account, checked with her by phone"
SHARED = "reached only through an address another record shares"


class Held:
    """A system answering with the person's record and two held for review."""

    export_batch_size = 10

    def export(self, people: Sequence[PersonAt]) -> list[ExportResult]:
        return [ExportResult(p.subject_id, (ExportedField("Contact:0030", "FirstName", "Ada",
                                                          "contact"),),
                             note="1 record(s); 2 record(s) held for review",
                             review=(HeldForReview(MINE, SHARED, (
                                 ExportedField(MINE, "Title", "Astronomer", "contact"),)),
                                 HeldForReview(THEIRS, SHARED, (
                                     ExportedField(THEIRS, "FirstName", "Annabella",
                                                   "contact"),))))
                for p in people]


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def held(door: Door, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Door, str]:
    """An access request whose answer holds two records for review; the CLI works on the
    same installation."""
    settings = door.container.settings
    monkeypatch.setattr("privasync.cli.context.build", lambda: build(
        door_settings(settings.database_url, tmp_path), environ=door_environ()))
    auth = {"Authorization": f"Bearer {door.token('requests:write')}"}
    made = door.client.post("/api/v1/requests", json={
        "kind": "access", "email": PERSON, "identity": "verified"}, headers=auth)
    request_id = made.json()["id"]
    _apply(door)
    c = door.container
    c.fulfiller.exports = {name: Held() for name in c.fulfiller.exports}
    for name in c.fulfiller.exports:
        c.deliverer.run(name)
    _apply(door)
    return door, request_id


def _apply(door: Door) -> None:
    """Apply what is stored, then give the applier's lease back: a lease held by nobody
    running would have every CLI and API step wait its 10 s for an applier."""
    for _ in range(3):
        door.container.applier.tick()
    door.container.applier.lease.release()


def _review(door: Door, request_id: str, token: str | None = None,
            **body: Any):  # type: ignore[no-untyped-def]
    token = token or door.token("requests:write", name="dpo")
    return door.client.post(f"/api/v1/requests/{request_id}/review", json=body,
                            headers={"Authorization": f"Bearer {token}"})


def _view(door: Door, request_id: str, path: str = "") -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {door.token('requests:read')}"}
    answer = door.client.get(f"/api/v1/requests/{request_id}{path}", headers=auth)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _held_at(view: dict[str, Any]) -> dict[str, list[str]]:
    return {d["destination"]: d["receipt"].get("held_for_review") for d in
            view["destinations"] if d["receipt"].get("held_for_review") is not None}


def test_records_held_for_review_are_decided_and_the_bundle_follows(
        held: tuple[Door, str]):
    door, request_id = held
    view = _view(door, request_id)
    assert view["status"] == "in_progress"  # waiting for the review
    [system] = _held_at(view)  # the one export destination configured here
    assert _held_at(view)[system] == [MINE, THEIRS]
    [waiting] = [d for d in view["destinations"] if d["destination"] == system]
    assert waiting["status"] == "awaiting_review"
    assert waiting["reason"].startswith("awaiting review: 2 record(s) held")
    shown = run("requests", "show", request_id)
    assert f"held for review (not sent to the person): {MINE}, {THEIRS}" in shown.output
    assert "awaiting_review" in shown.output and "awaiting review: 2 record(s)" in shown.output
    before = [f["value"] for s in _view(door, request_id, "/export")["systems"]
              for f in s["fields"]]
    assert "Astronomer" not in before and "Annabella" not in before

    included = run("requests", "review", request_id, "--include", MINE, "--reason", REASON)
    assert included.exit_code == 0, included.output
    _apply(door)
    again = run("requests", "review", request_id, "--exclude", MINE, "--reason", "oops")
    assert again.exit_code == 2, again.output
    assert "was included already" in again.output
    assert len(again.output.strip().splitlines()) == 1 and "Traceback" not in again.output
    assert _view(door, request_id)["status"] == "in_progress"  # one record still held

    excluded = _review(door, request_id, exclude=[f"{system}:{THEIRS}"],
                       reason="Annabella is her mother")
    assert excluded.status_code in (200, 202), excluded.text
    _apply(door)

    bundle = _view(door, request_id, "/export")
    values = [f["value"] for s in bundle["systems"] for f in s["fields"]]
    assert "Astronomer" in values and "Annabella" not in values
    [note] = [s["note"] for s in bundle["systems"] if s["system"] == system]
    assert "after review: 1 record(s) added to this answer, 1 left out" in note
    out = run("requests", "show", request_id).output
    assert _view(door, request_id)["status"] == "completed"  # the last one decided
    assert f"included after review: {MINE}" in out
    assert f"excluded after review (dropped): {THEIRS}" in out
    assert "held for review (not sent" not in out
    story = _view(door, request_id)
    reviewed = [h for h in story["history"] if h["event"] == "request.reviewed"]
    assert [(h["included"], h["excluded"], h["actor"], h["reason"]) for h in reviewed] == [
        ([MINE], [], "cli", REASON), ([], [THEIRS], "dpo", "Annabella is her mother")]


@pytest.mark.parametrize("body, status, said", [
    ({"include": ["Contact:003Z"], "reason": "mine"}, 409, "not held for review"),
    ({"include": [MINE], "exclude": [THEIRS]}, 422, "reason"),
    ({"include": [], "reason": "mine"}, 409, "name at least one held record"),
])
def test_the_api_refuses_what_cannot_be_decided_and_stores_nothing(
        held: tuple[Door, str], body: dict[str, Any], status: int, said: str):
    door, request_id = held
    token = door.token("requests:write")
    rows = door.rows()
    answer = _review(door, request_id, token, **body)
    assert answer.status_code == status, answer.text
    assert said in answer.json()["reason"]
    assert "Contact:003Z" not in answer.json()["reason"]  # never quotes what came in
    assert door.rows() == rows
    _apply(door)
    assert list(_held_at(_view(door, request_id)).values()) == [[MINE, THEIRS]]


def test_the_cli_refuses_a_record_not_held_and_an_unknown_request_with_exit_2(
        held: tuple[Door, str]):
    door, request_id = held
    rows = door.rows()
    for args in (("--include", "Contact:003Z", "--reason", "mine"),
                 ("--include", MINE)):  # no reason
        said = run("requests", "review", request_id, *args)
        assert said.exit_code == 2, said.output
        assert "Traceback" not in said.output
    said = run("requests", "review", request_id, "--include", "Contact:003Z", "--reason",
               "mine")
    assert "held now: " in said.output and "not held for review" in said.output
    unknown = run("requests", "review", "5d0c1a4e-0000-4000-8000-000000000000", "--include",
                  MINE, "--reason", "mine")
    assert unknown.exit_code == 2 and "no such request" in unknown.output
    assert door.rows() == rows
    assert json.loads(run("requests", "show", request_id, "--format", "json").stdout)[
        "status"] == "in_progress"
