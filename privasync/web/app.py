"""The HTTP app: webhook receivers, health checks, metrics and the admin API.

Errors map to status codes in one table; a response never carries a traceback
or a value from the request, and a refused delivery stores nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import anyio
import anyio.to_thread
import structlog
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from connectors import plugin
from core import deadletters, inbox, runtime
from core.db import reader
from core.errors import (
    BadInput,
    ConfigError,
    DeliveryError,
    Forbidden,
    PrivasyncError,
    Unauthenticated,
    UnknownSubject,
)
from privasync.app.bootstrap import Container
from privasync.web.admin.routes import admin_routes
from privasync.web.bodies import (
    BodyReadTimeout,
    BodyTooLarge,
    UnsupportedMediaType,
    close_after,
    read_body,
    require_media,
)
from privasync.web.outage import outage
from workers.broker import ping
from workers.metrics import Metrics

log = structlog.get_logger("privasync.http")


ERROR_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (Unauthenticated, 401),
    (Forbidden, 403),  # only OpenDSR callbacks raise it here (OpenDSR v2.0 §8.8)
    (BodyReadTimeout, 408),
    (BodyTooLarge, 413),
    (UnsupportedMediaType, 415),
    (UnknownSubject, 422),
    (BadInput, 400),
    (ConfigError, 404),
    (DeliveryError, 503),
)


def _status_for(exc: Exception) -> int:
    return next((code for kind, code in ERROR_STATUS if isinstance(exc, kind)), 500)


def _accepted(stored: inbox.Stored) -> JSONResponse:
    """2xx: the delivery is on disk (or was already); applying it happens behind."""
    return JSONResponse({"accepted": stored.events, "duplicate": stored.duplicate})


Handler = Callable[[Request], Awaitable[Response]]


def _guarded(source: str, metrics: Metrics, handler: Handler) -> Handler:
    """Translate our errors to 4xx/503 with a reason; anything else is a logged 500."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except PrivasyncError as exc:
            status = _status_for(exc)
            metrics.rejected.labels(source, type(exc).__name__).inc()
            log.info("webhook.rejected", source=source, status=status,
                     error=type(exc).__name__)
            return JSONResponse({"error": type(exc).__name__, "reason": str(exc)}, status,
                                headers=close_after(exc))
        except Exception as exc:  # noqa: BLE001 - a 500 without details, logged by type
            unavailable = outage(exc)
            if unavailable is not None:
                log.warning("webhook.unavailable", source=source, error=type(exc).__name__)
                return unavailable
            log.error("webhook.failed", source=source, error=type(exc).__name__)
            return JSONResponse({"error": "internal", "reason": "internal error; nothing "
                                 "was stored, the sender may retry"}, 500)

    return endpoint


def webhook_endpoint(route: plugin.Route, intake: plugin.Intake, *, limit: int,
                     timeout: float, public: str, clock: Callable[[], datetime]) -> Handler:
    """A connector's webhook route served: admitted before any of the body is read, its
    media type required, the body read within limits, then handed to the connector's
    ``receive`` in a thread; 2xx once stored."""

    async def endpoint(request: Request) -> Response:
        params = dict(request.path_params)
        if route.admit is not None:
            route.admit(params)
        if request.method in route.probe:
            return PlainTextResponse("ok")
        require_media(request, route.media_type)
        body = await read_body(request, min(limit, route.max_body_bytes or limit), timeout)
        url = str(request.url)
        if public:  # the URL as the sender addressed (and signed) it
            url = public + request.url.path + (f"?{request.url.query}" if request.url.query
                                               else "")
        delivery = plugin.Delivery(method=request.method, url=url, params=params,
                                   headers=dict(request.headers), body=body, now=clock())
        return _accepted(await run_in_threadpool(route.receive, intake, delivery))

    return endpoint


def create_app(container: Container) -> Starlette:
    limit = container.settings.max_body_bytes
    timeout = container.settings.body_read_timeout_seconds
    public = container.settings.public_url.rstrip("/")

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "alive"})

    probes: list[anyio.CapacityLimiter] = []

    async def readyz(request: Request) -> Response:
        # Threads of its own: requests waiting on the database (intake behind SQLite's write
        # lock) may hold every thread of the shared pool, and readiness must not wait for them.
        if not probes:
            probes.append(anyio.CapacityLimiter(2))
        checks = await anyio.to_thread.run_sync(readiness, container, limiter=probes[0])
        ok = all(c["ok"] for c in checks.values())
        failing = [name for name, c in checks.items() if not c["ok"]]
        return JSONResponse({"status": "ready" if ok else "not ready", "failing": failing,
                             "checks": checks}, 200 if ok else 503)

    async def metrics(request: Request) -> Response:
        payload = await run_in_threadpool(generate_latest, container.metrics.registry)
        return Response(payload, media_type=CONTENT_TYPE_LATEST)

    webhooks = [Route(r.path, _guarded(r.source, container.metrics, webhook_endpoint(
        r, container.intake, limit=limit, timeout=timeout, public=public,
        clock=container.clock)), methods=list(r.methods)) for r in container.webhooks]
    return Starlette(exception_handlers={HTTPException: _http_refusal}, routes=[
        *webhooks,
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        *admin_routes(container),
    ])


async def _http_refusal(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no such path, method not allowed) in our JSON shape."""
    assert isinstance(exc, HTTPException)
    kinds = {404: ("NotFound", "no such path"),
             405: ("MethodNotAllowed", "this path does not take that method")}
    error, reason = kinds.get(exc.status_code, ("HTTPError", "the request was refused"))
    return JSONResponse({"error": error, "reason": reason}, exc.status_code,
                        headers=exc.headers)


def readiness(container: Container) -> dict[str, dict[str, Any]]:
    """Each part a deployment depends on, with a reason when it fails."""
    checks: dict[str, dict[str, Any]] = {}
    try:
        with reader(container.probe_engine).connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = {"ok": True}
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        checks["database"] = {"ok": False, "reason": type(exc).__name__}
    try:
        ping(container.broker)
        checks["broker"] = {"ok": True, "kind": "embedded" if container.embedded else "remote"}
    except Exception as exc:  # noqa: BLE001
        checks["broker"] = {"ok": False, "reason": type(exc).__name__}
    checks["mappings"] = {"ok": bool(container.mappings.purposes),
                          "purposes": len(container.mappings.purposes),
                          "destinations": sorted(container.destinations)}
    checks["worker"] = _worker_check(container, checks["database"]["ok"])
    if checks["database"]["ok"]:
        checks["dead_jobs"] = _dead_check(container)
    return checks


def _dead_check(container: Container) -> dict[str, Any]:
    """Dead letters by destination; failing only with PRIVASYNC_READYZ_FAIL_ON_DEAD_JOBS."""
    with reader(container.probe_engine).connect() as conn:
        dead = deadletters.counts(conn)
    found: dict[str, Any] = {"ok": not (dead and container.settings.readyz_fail_on_dead_jobs),
                             "dead": dead}
    if not found["ok"]:
        found["reason"] = "dead jobs: " + ", ".join(f"{d} {n}" for d, n in sorted(dead.items()))
    return found


def _worker_check(container: Container, database_ok: bool) -> dict[str, Any]:
    if not database_ok:
        return {"ok": False, "reason": "database unavailable"}
    last = runtime.latest_beat(container.probe_engine, "worker:")
    limit = container.settings.worker.heartbeat_seconds * 3
    if last is None:
        return {"ok": False, "reason": "no worker has reported"}
    age = (container.clock() - last).total_seconds()
    return {"ok": age <= limit, "last_heartbeat_seconds_ago": round(age, 1),
            **({} if age <= limit else {"reason": f"heartbeat older than {limit:.0f}s"})}

