"""Requests and proof over the admin API and the CLI, on the app alone (nothing applies
what it stores): a request is shown as received before it is applied; breach scoping
refuses a destination that does not exist; the export answers what its published JSON
Schema and the OpenAPI document say."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner
from sqlalchemy import update

from core.db import inbox
from privasync.app import access_bundle
from privasync.cli.main import main
from privasync.web.admin import requests as request_routes
from privasync.web.admin.handling import _answer
from privasync.web.admin.routes import registry
from tests.api.door import Door

MAPPINGS = Path(__file__).parents[2] / "mappings"
WINDOW = {"from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"}


@pytest.fixture
def cli_env(tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PRIVASYNC_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("PRIVASYNC_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("PRIVASYNC_MAPPINGS_DIR", str(MAPPINGS))
    monkeypatch.setenv("PRIVASYNC_PARTNER_CONTACT_CENTRE_SECRET", "partner-secret")
    return tmp_path


PERSON = "jan.received@example.org"


def test_a_created_request_is_shown_as_received_before_the_applier_runs(cli_env: Path):
    created = CliRunner().invoke(main, ["requests", "create", "--kind", "erasure", "--email",
                                        PERSON, "--identity", "verified", "--format", "json"])
    assert created.exit_code == 0, created.output
    request_id = json.loads(created.stdout)["id"]
    assert json.loads(created.stdout)["applied"] is False  # nothing applies it here
    shown = CliRunner().invoke(main, ["requests", "show", request_id])
    assert shown.exit_code == 0, shown.output
    assert f"{request_id}: erasure, received, received 20" in shown.output
    told = json.loads(CliRunner().invoke(main, ["requests", "show", request_id, "--format",
                                                "json"]).stdout)
    assert (told["status"], told["kind"], told["due_at"]) == ("received", "erasure", None)
    assert datetime.fromisoformat(told["received_at"]).tzinfo is not None
    assert PERSON not in shown.output + json.dumps(told)
    unknown = CliRunner().invoke(main, ["requests", "show", str(uuid.uuid4())])
    assert unknown.exit_code == 2 and "no such request" in unknown.output


def test_a_received_request_is_shown_over_the_api_and_as_failed_once_given_up(door: Door):
    token = door.token("requests:read", "requests:write")
    auth = {"Authorization": f"Bearer {token}"}
    created = door.client.post("/api/v1/requests", json={"kind": "access", "email": PERSON,
                                                                "identity": "verified"},
                               headers=auth)
    assert created.status_code in (201, 202) and created.json()["applied"] is False
    request_id = created.json()["id"]
    shown = door.client.get(f"/api/v1/requests/{request_id}", headers=auth)
    assert shown.status_code == 200
    assert (shown.json()["status"], shown.json()["kind"]) == ("received", "access")
    assert PERSON not in shown.text
    export = door.client.get(f"/api/v1/requests/{request_id}/export", headers=auth)
    assert export.status_code == 404 and "not applied yet" in export.json()["reason"]
    with door.container.engine.begin() as conn:
        conn.execute(update(inbox).values(applied_at=datetime.now(UTC),
                                          last_error="error:ValueError"))
    failed = door.client.get(f"/api/v1/requests/{request_id}", headers=auth).json()
    assert failed["status"] == "failed" and "error:ValueError" in failed["note"]


def _get(door: Door, path: str, *scopes: str, **params: str):  # type: ignore[no-untyped-def]
    token = door.token(*scopes)
    return door.client.get(f"/api/v1{path}", params=params,
                           headers={"Authorization": f"Bearer {token}"})


def test_breach_scope_refuses_a_destination_that_does_not_exist_naming_the_real_ones(
        door: Door):
    answer = _get(door, "/breach-scope", "audit:read", destination="partner:nobody",
                  **WINDOW)
    assert answer.status_code == 422
    problem = answer.json()
    assert problem["fields"][0]["field"] == "destination"
    assert "no such destination" in problem["reason"]
    assert "partner:contact_centre" in problem["reason"] and "mailchimp" in problem["reason"]
    assert "nobody" not in problem["reason"]  # a refusal never quotes what came in


def test_breach_scope_still_answers_for_a_configured_destination(door: Door):
    answer = _get(door, "/breach-scope", "audit:read", destination="partner:contact_centre",
                  **WINDOW)
    assert answer.status_code == 200 and answer.json()["people"] == 0


def test_the_cli_breach_scope_refuses_an_unknown_destination_with_exit_2(cli_env: Path):
    result = CliRunner().invoke(main, ["breach", "scope", "--destination", "salesfroce",
                                       "--from", "2026-01-01", "--to", "2026-02-01"])
    assert result.exit_code == 2, result.output
    assert "no such destination" in result.output
    assert "partner:contact_centre" in result.output
    assert "0 people" not in result.output


def _bundle() -> access_bundle.AccessBundle:
    at = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    return access_bundle.AccessBundle(
        generated_at=at,
        request=access_bundle.RequestRef(id="r-1", kind="access", received_at=at,
                                         status="completed"),
        person=access_bundle.Person(subject_id="s-1", emails=["jane@example.org"]),
        systems=[access_bundle.SystemData(system="hubspot", gathered_at=at, note="", fields=[
            access_bundle.HeldField(record="contact:1", field="phone", value="+32 2 555 01 02",
                             canonical="phone", category="user.contact.phone_number",
                             purposes=["service"], legal_basis=["contract"],
                             source="hubspot")])],
        partners=[], consent=[], consent_history=[],
        contact_moments=[access_bundle.Moment(at=at, source="hubspot", what="email",
                                              outcome="sent")])


def _export_answer() -> dict:  # type: ignore[type-arg]
    [export] = [op for op in request_routes.OPERATIONS if op.handler.__name__ ==
                "request_export"]
    return json.loads(bytes(_answer(export, _bundle()).body))


def test_the_api_export_answers_dollar_schema_and_validates_against_the_served_schema(
        door: Door):
    answer = _export_answer()
    assert answer["$schema"] == access_bundle.SCHEMA_ID and "schema_" not in answer
    served = door.client.get("/api/v1/schemas/access-bundle.json")  # public, no token
    assert served.status_code == 200
    assert served.headers["content-type"] == "application/schema+json"
    jsonschema.Draft202012Validator(served.json()).validate(answer)
    assert served.json()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_the_openapi_document_lists_the_schema_and_the_answer_fits_it():
    document = registry().document()
    published = document["paths"]["/api/v1/schemas/access-bundle.json"]["get"]
    assert published["security"] == []
    assert "application/schema+json" in published["responses"]["200"]["content"]
    export = document["paths"]["/api/v1/requests/{request_id}/export"]["get"]
    assert "/api/v1/schemas/access-bundle.json" in export["description"]
    answered = export["responses"]["200"]["content"]["application/json"]["schema"]
    # A component keeps no $id: under JSON Schema 2020-12 it would rebase the component's
    # references away from this document. The answer fits the document's own schema.
    assert "$id" not in document["components"]["schemas"]["AccessBundle"]
    jsonschema.Draft202012Validator({**answered, "components": document["components"]}
                                    ).validate(_export_answer())
