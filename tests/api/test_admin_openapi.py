"""The OpenAPI 3.1 document is built from the same declarations as the routes: every
operation is in it with its scope, every reference resolves, and it is public."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request

from core.tokens import SCOPES
from privasync.demo.stack import Stack
from privasync.web.admin.errors import ValidationFailed
from privasync.web.admin.handling import query
from privasync.web.admin.openapi import Call, Operation, Registry
from privasync.web.admin.routes import admin_routes, registry
from tests.timing import scaled

COMPONENT_KEY = re.compile(r"^[a-zA-Z0-9.\-_]+$")  # what OpenAPI allows as a component name
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in refs(value)]
    return []


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def check_openapi_31(document: dict[str, Any]) -> None:
    """The structure OpenAPI 3.1 requires, and what this API promises on top."""
    assert document["openapi"].startswith("3.1.")
    assert document["info"]["title"] and document["info"]["version"]
    schemes = document["components"]["securitySchemes"]
    assert schemes == {"bearerToken": {
        "type": "http", "scheme": "bearer", "bearerFormat": "ps_...",
        "description": schemes["bearerToken"]["description"]}}
    for kind in ("schemas", "responses", "securitySchemes"):
        assert all(COMPONENT_KEY.match(key) for key in document["components"][kind])
    ids = []
    for path, item in document["paths"].items():
        assert path.startswith("/api/v1/")
        assert set(item) <= METHODS
        for operation in item.values():
            ids.append(operation["operationId"])
            assert operation["responses"]
            for status, response in operation["responses"].items():
                assert re.fullmatch(r"[1-5]\d\d", status)
                assert "$ref" in response or response["description"]
            declared = {p["name"] for p in operation.get("parameters", ()) if p["in"] == "path"}
            assert declared == set(re.findall(r"{([^}]+)}", path))
            for requirement in operation.get("security", [{}]):
                assert set(requirement) <= set(schemes)
    assert len(ids) == len(set(ids))
    for ref in refs(document):
        assert resolve(document, ref) is not None
    assert "$defs" not in str(refs(document))


def test_the_document_is_openapi_31_with_every_registered_operation():
    document = registry().document()
    check_openapi_31(document)
    declared = registry().operations
    assert declared, "no admin operation is registered"
    for op in declared:
        operation = document["paths"][op.full_path][op.method.lower()]
        assert operation["security"] == [{"bearerToken": [op.scope]}]
        assert f"`{op.scope}`" in operation["description"]
        assert {"401", "403", "429"} <= set(operation["responses"])
        assert str(op.status) in operation["responses"]
        if op.body is not None:
            assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            assert {"400", "413", "415", "422"} <= set(operation["responses"])
    assert document["paths"]["/api/v1/openapi.json"]["get"]["security"] == []


def test_the_token_operations_are_declared_with_their_schemas():
    document = registry().document()
    tokens = document["paths"]["/api/v1/tokens"]
    assert set(tokens) == {"get", "post"}
    assert set(document["paths"]["/api/v1/tokens/{name}"]) == {"delete"}
    create = document["components"]["schemas"]["CreateToken"]
    assert create["required"] == ["name", "scopes"] and create["additionalProperties"] is False
    assert create["properties"]["scopes"]["items"]["enum"] == list(SCOPES)
    assert "404" in document["paths"]["/api/v1/tokens/{name}"]["delete"]["responses"]


def test_every_declared_operation_is_routed(embedded: Stack):
    routes = {(r.path, m) for r in admin_routes(embedded.container) for m in r.methods or ()}
    for op in registry().operations:
        assert (op.full_path, op.method) in routes
    assert ("/api/v1/openapi.json", "GET") in routes


def test_the_served_document_is_public_and_the_registrys(embedded: Stack):
    response = requests.get(f"{embedded.url}/api/v1/openapi.json", timeout=scaled(10))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == registry().document()


class Page(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: str | None = None
    limit: int = Field(default=50, ge=1, le=500)


class Job(BaseModel):
    id: int


def job(call: Call) -> Job:
    return Job(id=int(call.path["job_id"]) + call.query(Page).limit)


def test_query_and_path_parameters_are_documented_and_validated():
    op = Operation("GET", "/jobs/{job_id}", "A job", "jobs:read", job, response=Job, query=Page)
    operation = Registry().add(op).document()["paths"]["/api/v1/jobs/{job_id}"]["get"]
    parameters = {(p["name"], p["in"]): p for p in operation["parameters"]}
    assert set(parameters) == {("job_id", "path"), ("status", "query"), ("limit", "query")}
    assert parameters[("limit", "query")]["schema"]["maximum"] == 500
    assert not parameters[("limit", "query")]["required"] and "422" in operation["responses"]
    request = Request({"type": "http", "headers": [],
                       "query_string": b"limit=0&bogus=jan@example.be&jan%40example.be=1"})
    with pytest.raises(ValidationFailed) as refused:
        query(request, Page)
    # An undeclared key is the sender's choice, like a value: never repeated.
    assert [f.field for f in refused.value.fields] == ["limit", "?", "?"]
    assert "jan" not in str(refused.value) and "jan" not in repr(refused.value.fields)


def test_a_declaration_that_cannot_be_served_is_refused_when_declared():
    with pytest.raises(ValueError, match="unknown scope"):
        Operation("GET", "/jobs", "Jobs", "jobs:delete", job, response=Job)
    with pytest.raises(ValueError, match="a response model, or 204"):
        Operation("DELETE", "/jobs/{job_id}", "Drop", "jobs:write", job, response=Job,
                  status=204)
    with pytest.raises(ValueError, match="no body on GET"):
        Operation("GET", "/jobs", "Jobs", "jobs:read", job, response=Job, body=Page)
    with pytest.raises(ValueError, match="bad path or error statuses"):
        Operation("GET", "/jobs", "Jobs", "jobs:read", job, response=Job, errors=(418,))
    with pytest.raises(ValueError, match="bad path"):
        Operation("GET", "/jobs/{job_id:int}", "Job", "jobs:read", job, response=Job)
    with pytest.raises(ValueError, match="named function"):
        Operation("GET", "/jobs", "Jobs", "jobs:read", lambda call: None, response=Job)
    op = Operation("GET", "/jobs", "Jobs", "jobs:read", job, response=Job)
    with pytest.raises(ValueError, match="declared twice"):
        Registry().add(op, op)
