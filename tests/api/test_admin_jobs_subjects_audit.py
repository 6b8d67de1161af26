"""``/api/v1/jobs``, ``/subjects``, ``/mappings`` and ``/audit`` over HTTP: each needs its
scope, pages with a cursor, refuses unknown ids with 404, and answers ids and states,
never an address or a value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from sqlalchemy import select, update

from core import ledger as chain
from core.db import jobs as jobs_table
from core.db import ledger
from privasync.cli.main import configure_logging, main
from privasync.demo.stack import Stack
from privasync.web.admin import audit, jobs, mappings, subjects
from tests.api.conftest import issue_token
from tests.e2e.conftest import seed, settle, subject_of
from tests.timing import scaled

EMAIL = "jane.doe@example.org"
MAPPINGS = Path(__file__).parents[2] / "mappings"
NEW = (*jobs.OPERATIONS, *subjects.OPERATIONS, *mappings.OPERATIONS, *audit.OPERATIONS)
ALL_READ = ("jobs:read", "jobs:write", "subjects:read", "mappings:read", "audit:read")


class Api:
    def __init__(self, stack: Stack, token: str) -> None:
        self.url = f"{stack.url}/api/v1"
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path: str, **params: str) -> requests.Response:
        return requests.get(self.url + path, params=params, headers=self.headers,
                            timeout=scaled(10))

    def post(self, path: str, body: object = None) -> requests.Response:
        return requests.post(self.url + path, json=body if body is not None else {},
                             headers=self.headers, timeout=scaled(10))


@pytest.fixture
def api(embedded: Stack) -> Api:
    return Api(embedded, issue_token(embedded, "auditor", *ALL_READ))


def _call(stack: Stack, method: str, path: str, token: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    concrete = path.replace("{job_id}", "1").replace("{subject_id}", "nobody")
    return requests.request(method, f"{stack.url}/api/v1{concrete}", headers=headers,
                            json={} if method == "POST" else None, timeout=scaled(10))


def test_every_new_route_is_401_without_a_token_and_403_without_its_scope(embedded: Stack):
    other = {scope: issue_token(embedded, f"not-{scope.replace(':', '-')}",
                                *[s for s in ALL_READ + ("tokens:read",) if s != scope])
             for scope in {op.scope for op in NEW}}
    for op in NEW:
        missing = _call(embedded, op.method, op.path, None)
        assert missing.status_code == 401, (op.path, missing.text)
        assert missing.json()["error"] == "Unauthenticated"
        refused = _call(embedded, op.method, op.path, other[op.scope])
        assert refused.status_code == 403, (op.path, refused.text)
        assert refused.json()["scope"] == op.scope


def test_jobs_are_listed_a_page_at_a_time_and_read_one_by_one(embedded: Stack, api: Api):
    seed(embedded, EMAIL)
    embedded.emulators.hubspot.ui_unsubscribe_all(
        embedded.emulators.hubspot.find_by_email(EMAIL) or "")
    embedded.emulators.hubspot.flush_webhooks()
    settle(embedded)
    with embedded.container.engine.connect() as conn:
        ids = list(conn.execute(select(jobs_table.c.id).order_by(jobs_table.c.id)).scalars())
    assert len(ids) >= 3
    seen, cursor = [], None
    while True:
        page = api.get("/jobs", status="done", limit="2", **({"cursor": cursor} if cursor
                                                            else {})).json()
        seen += [j["id"] for j in page["jobs"]]
        assert len(page["jobs"]) <= 2
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    one = api.get(f"/jobs/{ids[0]}")
    assert one.status_code == 200 and one.json()["status"] == "done"
    assert one.json()["finished_at"] and one.json()["next_attempt_at"] is None
    assert EMAIL not in one.text and "example.org" not in api.get("/jobs", status="done").text
    for unknown in ("999999", "abc", "1e3"):
        assert api.get(f"/jobs/{unknown}").status_code == 404
    assert api.get("/jobs", status="exploded").status_code == 422
    both = api.get("/jobs", dead="true", status="done")  # a 422 as the document declares
    assert both.status_code == 422 and both.json()["fields"][0]["field"] == "status"
    assert api.post(f"/jobs/{ids[0]}/retry").status_code == 409
    assert api.post("/jobs/999999/retry").status_code == 404
    assert api.post("/jobs/retry-dead", {"destination": "hubspot"}).json() == {
        "retried": [], "superseded": {}}


def test_a_subject_is_its_states_and_counts_without_an_address(embedded: Stack, api: Api):
    contact = seed(embedded, EMAIL)
    embedded.emulators.hubspot.ui_set_subscription(contact, 102, False)
    embedded.emulators.hubspot.flush_webhooks()
    settle(embedded)
    subject = subject_of(embedded, EMAIL)
    assert subject is not None
    answer = api.get(f"/subjects/{subject}")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["id"] == subject and body["erased_at"] is None
    assert body["identifiers"] == {"email": 1}
    assert body["systems"].get("hubspot", 0) >= 1
    withdrawn = [c for c in body["consents"] if c["status"] == "withdrawn"]
    assert withdrawn and all(c["source"] == "hubspot" for c in withdrawn)
    evidence = withdrawn[0]["evidence"]
    assert evidence["reference_kind"] == "hubspot-event"
    assert evidence["reference"].startswith("hubspot-event:")
    assert body["jobs"] and all(set(s) <= {"done", "pending", "running"}
                                for s in body["jobs"].values())
    assert "jane" not in answer.text.lower() and "example.org" not in answer.text
    assert api.get("/subjects/no-such-subject").status_code == 404
    assert api.get("/subjects/" + "x" * 300).status_code == 404


def test_the_data_map_is_what_mappings_show_prints(embedded: Stack, api: Api,
                                                   monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PRIVASYNC_MAPPINGS_DIR", str(MAPPINGS))
    monkeypatch.setenv("PRIVASYNC_VAR_DIR", str(embedded.container.settings.var_dir))
    try:
        shown = CliRunner().invoke(main, ["--log-level", "WARNING", "mappings", "show",
                                          "--format", "json"])
    finally:
        configure_logging("WARNING")
    assert shown.exit_code == 0
    answer = api.get("/mappings")
    assert answer.status_code == 200
    assert answer.json() == json.loads(shown.output)
    assert {"field": "date_of_birth", "destination": "mailchimp"}.items() <= next(
        f for f in answer.json() if f["field"] == "date_of_birth"
        and f["destination"] == "mailchimp").items()


def test_the_ledger_is_verified_and_read_by_subject_without_sealed_details(
        embedded: Stack, api: Api):
    contact = seed(embedded, EMAIL)
    embedded.emulators.hubspot.ui_unsubscribe_all(contact)
    embedded.emulators.hubspot.flush_webhooks()
    settle(embedded)
    verified = api.get("/audit/verify").json()
    assert verified["ok"] is True and verified["entries"] >= 2
    assert verified["first_bad_seq"] is None
    subject = subject_of(embedded, EMAIL) or ""
    everything, cursor = [], None
    while True:
        page = api.get("/audit/entries", limit="3",
                       **({"cursor": cursor} if cursor else {})).json()
        everything += page["entries"]
        if page["next_cursor"] is None:
            break
        cursor = page["next_cursor"]
    assert [e["seq"] for e in everything] == list(range(1, len(everything) + 1))
    mine = api.get("/audit/entries", subject=subject, limit="1000").json()["entries"]
    assert mine and all(e["subject_id"] == subject for e in mine)
    assert all(e["sealed"] and e["detail"] is None for e in mine)
    assert any(not e["sealed"] and e["detail"] for e in everything)
    assert "example.org" not in json.dumps(everything)
    window = api.get("/audit/entries", **{"from": everything[0]["at"],
                                          "to": everything[0]["at"]}).json()
    assert window["entries"] == []
    assert api.get("/audit/entries", **{"from": "2026-01-01T00:00:00"}).status_code == 400
    assert api.get("/audit/entries", request="no-such-request").json()["entries"] == []

    with embedded.container.engine.begin() as conn:
        conn.execute(update(ledger).where(ledger.c.seq == 2).values(kind="tampered"))
    broken = api.get("/audit/verify").json()
    assert broken["ok"] is False and broken["first_bad_seq"] == 2
    assert broken["reason"] == chain.ALTERED and broken["intact"] == 1
    assert broken["first_bad_hash"] == everything[1]["hash"]
