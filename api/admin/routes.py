"""The admin API mounted: every module's operations in one registry, one guard (and so
one failure limit) per app, and the OpenAPI document built from the same registry."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.access import ACCESS_SCHEMA
from api.admin import audit, jobs, mappings, requests, subjects, tokens
from api.admin.auth import Guard
from api.admin.handling import endpoint
from api.admin.openapi import PREFIX, Registry
from api.bootstrap import Container


def registry() -> Registry:
    """Every admin operation; a new module of routes adds its ``OPERATIONS`` here."""
    return Registry().add(*tokens.OPERATIONS, *requests.OPERATIONS, *jobs.OPERATIONS,
                          *subjects.OPERATIONS, *mappings.OPERATIONS, *audit.OPERATIONS)


def admin_routes(container: Container) -> list[Route]:
    declared = registry()
    guard = Guard(container)
    document = json.dumps(declared.document()).encode()

    async def openapi(request: Request) -> Response:
        return Response(document, media_type="application/json")

    schema = json.dumps(ACCESS_SCHEMA).encode()

    async def access_schema(request: Request) -> Response:
        return Response(schema, media_type="application/schema+json")

    return [Route(PREFIX + "/openapi.json", openapi, methods=["GET"]),
            Route(PREFIX + "/schemas/access-bundle.json", access_schema, methods=["GET"]),
            *(Route(op.full_path, endpoint(op, container, guard), methods=[op.method])
              for op in declared.operations)]
