"""``/api/v1/tokens`` end to end, and how every admin body is refused when it is wrong:
415, 413, 400, 422 naming the field and never the value."""

from __future__ import annotations

import json

import pytest
import requests
from sqlalchemy import select

from core.db import ledger, ledger_pending
from privasync.demo.stack import Stack
from tests.api.conftest import issue_token
from tests.timing import scaled


class Admin:
    def __init__(self, stack: Stack, token: str) -> None:
        self.url = f"{stack.url}/api/v1"
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path: str, token: str | None = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else self.headers
        return requests.get(self.url + path, headers=headers, timeout=scaled(10))

    def post(self, path: str, body: object = None, *, raw: bytes | None = None,
             content_type: str = "application/json") -> requests.Response:
        data = raw if raw is not None else json.dumps(body).encode()
        return requests.post(self.url + path, data=data, timeout=scaled(10),
                             headers=self.headers | {"Content-Type": content_type})

    def delete(self, path: str) -> requests.Response:
        return requests.delete(self.url + path, headers=self.headers, timeout=scaled(10))


@pytest.fixture
def admin(embedded: Stack) -> Admin:
    return Admin(embedded, issue_token(embedded, "ops", "tokens:read", "tokens:write",
                                       "jobs:read"))


def ledger_details(stack: Stack) -> list[tuple[str, dict[str, object]]]:
    with stack.container.engine.connect() as conn:
        rows = conn.execute(select(ledger.c.kind, ledger.c.detail).where(
            ledger.c.kind.like("token.%")).order_by(ledger.c.seq)).all()
        rows += conn.execute(select(ledger_pending.c.kind, ledger_pending.c.detail).where(
            ledger_pending.c.kind.like("token.%")).order_by(ledger_pending.c.id)).all()
    return [(r.kind, json.loads(r.detail)) for r in rows]


def test_create_list_use_and_revoke_a_token(embedded: Stack, admin: Admin):
    created = admin.post("/tokens", {"name": "ci-bot", "scopes": ["jobs:read", "tokens:read"],
                                     "expires_in_days": 30})
    assert created.status_code == 201, created.text
    assert created.headers["Cache-Control"] == "no-store"
    body = created.json()
    assert body["name"] == "ci-bot" and body["scopes"] == ["jobs:read", "tokens:read"]
    assert body["token"].startswith("ps_") and body["expires_at"]
    listed = admin.get("/tokens", token=body["token"])
    assert listed.status_code == 200
    views = {t["name"]: t for t in listed.json()["tokens"]}
    assert set(views) == {"ops", "ci-bot"} and views["ci-bot"]["status"] == "active"
    assert body["token"] not in listed.text and "digest" not in listed.text
    assert admin.delete("/tokens/ci-bot").status_code == 204
    assert admin.get("/tokens", token=body["token"]).status_code == 401
    assert admin.delete("/tokens/ci-bot").status_code == 204  # twice is harmless
    statuses = {t["name"]: t["status"] for t in admin.get("/tokens").json()["tokens"]}
    assert statuses == {"ops": "active", "ci-bot": "revoked"}
    assert [(kind, detail["name"], detail["actor"]) for kind, detail in
            ledger_details(embedded) if detail["name"] == "ci-bot"] == [
        ("token.created", "ci-bot", "ops"), ("token.revoked", "ci-bot", "ops")]


def test_revoking_an_unknown_token_is_404_and_a_taken_name_409(admin: Admin):
    assert admin.delete("/tokens/ghost").status_code == 404
    taken = admin.post("/tokens", {"name": "ops", "scopes": ["jobs:read"]})
    assert taken.status_code == 409 and taken.json()["error"] == "Conflict"


def test_a_token_cannot_grant_a_scope_it_does_not_hold(admin: Admin):
    refused = admin.post("/tokens", {"name": "root", "scopes": ["jobs:read", "audit:read"]})
    assert refused.status_code == 403 and refused.json()["scope"] == "audit:read"
    assert [t["name"] for t in admin.get("/tokens").json()["tokens"]] == ["ops"]


def test_a_body_that_is_not_json_typed_is_415(admin: Admin):
    refused = admin.post("/tokens", {"name": "a", "scopes": ["jobs:read"]},
                         content_type="text/plain")
    assert refused.status_code == 415 and "application/json" in refused.json()["reason"]
    assert admin.post("/tokens", {"name": "a", "scopes": ["jobs:read"]},
                      content_type="application/json; charset=utf-8").status_code == 201


def test_a_body_over_the_limit_is_413_before_it_is_read(embedded: Stack, admin: Admin):
    limit = embedded.container.settings.max_body_bytes
    refused = admin.post("/tokens", raw=b'{"name": "' + b"a" * limit + b'"}')
    assert refused.status_code == 413 and str(limit) in refused.json()["reason"]


@pytest.mark.parametrize("raw", [b"{not json", b"", b"\xff\xfe\x00", b"[" * 5000,
                                 b'{"name": "a", "scopes": ["jobs:read"]'])
def test_a_body_that_is_not_json_is_400_never_500(admin: Admin, raw: bytes):
    refused = admin.post("/tokens", raw=raw)
    assert refused.status_code == 400, refused.text
    assert refused.json()["reason"].startswith("the body is not valid JSON")


@pytest.mark.parametrize(("body", "field"), [
    ({"scopes": ["jobs:read"]}, "name"),
    ({"name": "Jan.Peeters@example.be", "scopes": ["jobs:read"]}, "name"),
    ({"name": "a", "scopes": ["jobs:read", "jan.peeters@example.be"]}, "scopes.1"),
    ({"name": "a", "scopes": []}, "scopes"),
    ({"name": "a", "scopes": ["jobs:read"], "expires_in_days": 0}, "expires_in_days"),
    ({"name": "a", "scopes": ["jobs:read"], "expires_in_days": "30"}, "expires_in_days"),
    ({"name": "a", "scopes": ["jobs:read"], "jan.peeters@example.be": 1}, "?"),
    (["jan.peeters@example.be"], "body"),
])
def test_a_body_that_breaks_the_schema_is_422_naming_the_field_not_the_value(
        admin: Admin, body: object, field: str):
    refused = admin.post("/tokens", body)
    assert refused.status_code == 422, refused.text
    answer = refused.json()
    assert answer["error"] == "ValidationFailed"
    assert field in [f["field"] for f in answer["fields"]]
    assert answer["reason"].startswith(answer["fields"][0]["field"] + ":")
    assert "peeters" not in refused.text.lower()
