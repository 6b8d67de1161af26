"""Admin routes declared once, as data: the Starlette routes and the OpenAPI 3.1 document
are both built from the same ``Operation``s, so the document cannot drift from the API.

An operation names its method, path (under ``/api/v1``; ``{name}`` for a path
parameter), summary, the one scope it requires, its pydantic models (body, query,
response) and the error statuses of its own (404, 409); the refusals every operation
shares (401, 403, 429, and 400/413/415/422 with a body) are added for it. JSON Schemas
come from the models, with ``$defs`` moved to ``components/schemas``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from core.tokens import SCOPES, Principal
from privasync.web.admin.errors import Problem

M = TypeVar("M", bound=BaseModel)
V = TypeVar("V")  # the view of the app a handler group uses (privasync/app/views.py)
PREFIX = "/api/v1"
SCHEME = "bearerToken"
_PATH_PARAM = re.compile(r"{([a-z_][a-z0-9_]*)}")
_REFUSALS: dict[int, tuple[str, str, dict[str, Any]]] = {
    400: ("BadRequest", "The body is not valid JSON.", {}),
    401: ("Unauthenticated", "Missing, unknown, revoked or expired token.", {
        "WWW-Authenticate": {"schema": {"type": "string"}, "description": "`Bearer`"}}),
    403: ("Forbidden", "The token lacks the scope this operation requires.", {}),
    404: ("NotFound", "Nothing of that name.", {}),
    408: ("RequestTimeout", "The body did not arrive within "
          "`PRIVASYNC_BODY_READ_TIMEOUT_SECONDS`.", {}),
    409: ("Conflict", "It collides with what exists.", {}),
    413: ("PayloadTooLarge", "The body is larger than `PRIVASYNC_MAX_BODY_BYTES`.", {}),
    415: ("UnsupportedMediaType", "The body must be `application/json`.", {}),
    422: ("ValidationFailed", "The body or query does not fit the schema; `fields` names "
           "where.", {}),
    429: ("RateLimited", "Too many failed authentications from this address; nothing was "
           "checked.", {"Retry-After": {"schema": {"type": "integer"},
                                        "description": "Seconds to wait."}}),
}


@dataclass(frozen=True)
class Call(Generic[V]):
    """What a handler is given: the part of the app its group uses (``uses``, typed by a
    narrow view), the caller, the clock's reading and the validated input."""

    uses: V
    principal: Principal
    now: datetime
    path: Mapping[str, str]
    query_model: BaseModel | None = None
    body_model: BaseModel | None = None

    def body(self, model: type[M]) -> M:
        """The body, validated against ``model`` (the operation's ``body``)."""
        if not isinstance(self.body_model, model):
            raise TypeError(f"this operation's body is not a {model.__name__}")
        return self.body_model

    def query(self, model: type[M]) -> M:
        """The query string, validated against ``model`` (the operation's ``query``)."""
        if not isinstance(self.query_model, model):
            raise TypeError(f"this operation's query is not a {model.__name__}")
        return self.query_model


Handler = Callable[[Call[Any]], BaseModel | None]


@dataclass(frozen=True)
class Operation:
    """One admin route. ``handler`` runs in a worker thread; it returns an instance of
    ``response``, or None when ``status`` is 204, and raises core errors to refuse."""

    method: str
    path: str
    summary: str
    scope: str
    handler: Handler
    response: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    status: int = 200
    errors: tuple[int, ...] = ()
    description: str = ""
    tag: str = "admin"

    def __post_init__(self) -> None:
        if self.method not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            raise ValueError(f"{self.path}: unsupported method {self.method}")
        if self.scope not in SCOPES:
            raise ValueError(f"{self.method} {self.path}: unknown scope {self.scope}")
        if (self.status == 204) != (self.response is None):
            raise ValueError(f"{self.method} {self.path}: a response model, or 204")
        if self.body is not None and self.method in ("GET", "DELETE"):
            raise ValueError(f"{self.method} {self.path}: no body on {self.method}")
        unknown = [s for s in self.errors if s not in _REFUSALS]
        if unknown or not self.path.startswith("/") \
                or re.findall(r"{([^}]*)}", self.path) != _PATH_PARAM.findall(self.path):
            raise ValueError(f"{self.method} {self.path}: bad path or error statuses")
        if not getattr(self.handler, "__name__", "<lambda>").isidentifier():
            raise ValueError(f"{self.method} {self.path}: the handler must be a named "
                             "function (its name is the operationId)")

    @property
    def full_path(self) -> str:
        return PREFIX + self.path

    @property
    def operation_id(self) -> str:
        return self.handler.__name__


@dataclass(frozen=True)
class Published:
    """A public JSON Schema served as it is: the contract of an answer, for readers who
    validate it outside the API (the access bundle a person is given)."""

    path: str
    summary: str
    operation_id: str
    schema: Mapping[str, Any]

    @property
    def full_path(self) -> str:
        return PREFIX + self.path


@dataclass
class Registry:
    """The admin API's operations, in the order they were added, and the schemas it
    publishes."""

    title: str = "privasync admin API"
    version: str = "1.0.0"
    operations: list[Operation] = field(default_factory=list)
    published: list[Published] = field(default_factory=list)

    def publish(self, *schemas: Published) -> Registry:
        self.published.extend(schemas)
        return self

    def add(self, *operations: Operation) -> Registry:
        for op in operations:
            if any((o.method, o.full_path) == (op.method, op.full_path)
                   or o.operation_id == op.operation_id for o in self.operations):
                raise ValueError(f"{op.method} {op.full_path} is declared twice")
            self.operations.append(op)
        return self

    def document(self) -> dict[str, Any]:
        """The OpenAPI 3.1 document of every operation (public: it holds no data)."""
        models: list[tuple[type[BaseModel], JsonSchemaMode]] = [(Problem, "serialization")]
        for op in self.operations:
            models += [(m, "validation") for m in (op.body, op.query) if m is not None]
            models += [(op.response, "serialization")] if op.response is not None else []
        refs, top = models_json_schema(list(dict.fromkeys(models)),
                                       ref_template="#/components/schemas/{model}")
        # A component keeps no ``$id`` (a published schema's own): under JSON Schema
        # 2020-12 it would rebase the component's ``#/components/...`` references.
        schemas: dict[str, Any] = {name: {k: v for k, v in schema.items() if k != "$id"}
                                   for name, schema in top.get("$defs", {}).items()}
        paths: dict[str, dict[str, Any]] = {PREFIX + "/openapi.json": {"get": {
            "operationId": "openapi", "summary": "This document", "security": [],
            "tags": ["meta"], "responses": {"200": {"description": "OpenAPI 3.1", "content": {
                "application/json": {"schema": {"type": "object"}}}}}}}}
        for published in self.published:
            paths[published.full_path] = {"get": {
                "operationId": published.operation_id, "summary": published.summary,
                "security": [], "tags": ["meta"], "responses": {"200": {
                    "description": "JSON Schema 2020-12, served as it is",
                    "content": {"application/schema+json": {"schema": {"type": "object"}}}}}}}
        for op in self.operations:
            paths.setdefault(op.full_path, {})[op.method.lower()] = _operation(op, refs,
                                                                               schemas)
        problem = refs[(Problem, "serialization")]
        return {
            "openapi": "3.1.0",
            "info": {"title": self.title, "version": self.version, "description": (
                "Administration of privasync. Every operation but this document needs a "
                "bearer token (`privasync tokens create`) holding the operation's scope.")},
            "paths": paths,
            "components": {
                "schemas": schemas,
                "responses": {name: _refusal(text, headers, problem)
                              for name, text, headers in _REFUSALS.values()},
                "securitySchemes": {SCHEME: {
                    "type": "http", "scheme": "bearer", "bearerFormat": "ps_...",
                    "description": "An admin token; its scopes: " + ", ".join(SCOPES)}}},
        }


def _refusal(text: str, headers: dict[str, Any], problem: Any) -> dict[str, Any]:
    found = {"description": text, "content": {"application/json": {"schema": problem}}}
    return found | ({"headers": headers} if headers else {})


def _operation(op: Operation, refs: Mapping[tuple[Any, JsonSchemaMode], dict[str, Any]],
               schemas: Mapping[str, Any]) -> dict[str, Any]:
    statuses = {401, 403, 429, *op.errors}
    if op.body is not None:
        statuses |= {400, 408, 413, 415, 422}
    if op.query is not None:
        statuses.add(422)
    responses: dict[str, Any] = {str(op.status): {"description": op.summary} | ({
        "content": {"application/json": {"schema": refs[(op.response, "serialization")]}}}
        if op.response is not None else {})}
    for status in sorted(statuses):
        responses[str(status)] = {"$ref": f"#/components/responses/{_REFUSALS[status][0]}"}
    found: dict[str, Any] = {
        "operationId": op.operation_id, "summary": op.summary, "tags": [op.tag],
        "description": (op.description + "\n\n" if op.description else "")
        + f"Requires the scope `{op.scope}`.",
        "security": [{SCHEME: [op.scope]}], "x-scope": op.scope, "responses": responses}
    parameters = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                  for name in _PATH_PARAM.findall(op.path)]
    if op.query is not None:
        schema = schemas[refs[(op.query, "validation")]["$ref"].rsplit("/", 1)[1]]
        required = set(schema.get("required", ()))
        parameters += [{"name": name, "in": "query", "required": name in required,
                        "schema": prop} for name, prop in schema.get("properties", {}).items()]
    if parameters:
        found["parameters"] = parameters
    if op.body is not None:
        found["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": refs[(op.body, "validation")]}}}
    return found
