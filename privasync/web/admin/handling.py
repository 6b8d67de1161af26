"""One declared ``Operation`` served: authorise, read and validate the input, run the
handler in a worker thread, answer JSON.

Checks run in this order, and the first that fails answers: failure limit (429),
token (401), scope (403), content type (415), size (413, before a byte is read),
JSON (400), schema (422). A bad request is never a 500, a refusal never quotes a
value that came in, and every answer says ``Cache-Control: no-store`` (a created
token is in one).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core.errors import BadInput, NotFound, PrivasyncError
from core.strict_json import text_problem
from privasync.app.bootstrap import Container
from privasync.web.admin.auth import Guard
from privasync.web.admin.errors import FieldProblem, ValidationFailed, refusal
from privasync.web.admin.openapi import Call, Operation
from privasync.web.bodies import read_body, require_media
from privasync.web.outage import outage
from workers.runtime import Foreground

log = structlog.get_logger("privasync.admin")

NO_STORE = {"Cache-Control": "no-store"}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_PATH_PARAM = 200


def _names(model: type[BaseModel]) -> frozenset[str]:
    """The field names (and aliases) a model declares: the only keys a reason may name."""
    return frozenset(n for name, f in model.model_fields.items()
                     for n in (name, f.alias) if n)


def problems(exc: ValidationError, where: str,
             model: type[BaseModel] | None = None) -> list[FieldProblem]:
    """The fields at fault, without the values: a message that would quote the value
    (some do) is replaced by the error's type, and a key the model does not declare (an
    unexpected key, a key of a free-form map: the sender chose it) by ``?``."""
    known = _names(model) if model is not None else frozenset()
    found = []
    for e in exc.errors(include_url=False, include_context=False):
        path = ".".join(str(p) if isinstance(p, int) or (p in known and _NAME.match(p))
                        else "?" for p in e["loc"]) or where
        message, value = e["msg"], e.get("input")
        if isinstance(value, str | int | float) and str(value) and str(value) in message:
            message = f"invalid ({e['type']})"
        found.append(FieldProblem(field=path, problem=message))
    return found


async def json_body(request: Request, model: type[BaseModel], limit: int,
                    timeout: float | None = None) -> BaseModel:
    """The body as ``model``. Raises UnsupportedMediaType, BodyTooLarge, BodyReadTimeout,
    BadInput (not JSON) or ValidationFailed (JSON that does not fit)."""
    require_media(request, "application/json")
    raw = await read_body(request, limit, timeout)
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        broken = next((e for e in exc.errors(include_url=False) if e["type"] == "json_invalid"),
                      None)
        if broken is not None:
            raise BadInput("the body is not valid JSON: " + broken["msg"].removeprefix(
                "Invalid JSON: ")) from exc
        raise ValidationFailed(problems(exc, "body", model)) from exc


def _check_path(params: dict[str, str]) -> None:
    """Names in the path are ids and names of ours: one no row can have (too long, or with
    a character a database refuses in text: PostgreSQL refuses NUL) finds nothing."""
    for name, value in params.items():
        if len(value) > MAX_PATH_PARAM or text_problem(value) \
                or any(ord(c) < 32 for c in value):
            raise NotFound(f"no such {name}")


def query(request: Request, model: type[BaseModel]) -> BaseModel:
    """The query string as ``model`` (one value per name). Raises ValidationFailed."""
    try:
        return model.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise ValidationFailed(problems(exc, "query", model)) from exc


def endpoint(op: Operation, container: Container,
             guard: Guard) -> Callable[[Request], Awaitable[Response]]:
    limit = container.settings.max_body_bytes
    timeout = container.settings.body_read_timeout_seconds

    async def serve(request: Request) -> Response:
        try:
            principal = await guard.authorized(request, op.scope)
            _check_path(request.path_params)
            body = (await json_body(request, op.body, limit, timeout) if op.body is not None
                    else None)
            params = query(request, op.query) if op.query is not None else None
            call = Call(container, principal, container.clock(), dict(request.path_params),
                        params, body)
            result = await run_in_threadpool(_run, op, call, container.foreground)
            answer = _answer(op, result)
        except PrivasyncError as exc:
            container.metrics.rejected.labels("admin", type(exc).__name__).inc()
            log.info("admin.refused", operation=op.operation_id, error=type(exc).__name__)
            answer = refusal(exc)
        except Exception as exc:  # noqa: BLE001 - a 500 without details, logged by type
            unavailable = outage(exc)
            if unavailable is None:
                log.error("admin.failed", operation=op.operation_id, error=type(exc).__name__)
                answer = JSONResponse({"error": "internal", "reason": "internal error"}, 500)
            else:
                log.warning("admin.unavailable", operation=op.operation_id,
                            error=type(exc).__name__)
                answer = unavailable
        else:
            # "actor", the token's name: a key named "token" is redacted from every log line.
            log.info("admin.call", operation=op.operation_id, actor=principal.name,
                     status=answer.status_code)
        answer.headers.update(NO_STORE)
        return answer

    return serve


def _run(op: Operation, call: Call[Container], foreground: Foreground) -> BaseModel | None:
    with foreground.serving():
        return op.handler(call)


def _answer(op: Operation, result: Any) -> Response:
    if op.response is None:
        if result is not None:
            raise TypeError(f"{op.operation_id} answers 204 but returned a body")
        return Response(status_code=op.status)
    if not isinstance(result, op.response):
        raise TypeError(f"{op.operation_id} must return a {op.response.__name__}")
    # By alias, as the OpenAPI document describes it: the bundle's ``$schema``, not the
    # Python name ``schema_`` that its published JSON Schema refuses.
    return JSONResponse(result.model_dump(mode="json", by_alias=True), op.status)
