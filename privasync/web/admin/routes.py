"""The admin API mounted: every module's operations in one registry, one guard (and so
one failure limit) per app, and the OpenAPI document built from the same registry."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from privasync.app.access_bundle import ACCESS_SCHEMA, SCHEMA_PATH
from privasync.app.bootstrap import Container
from privasync.web.admin import audit, jobs, mappings, requests, subjects, tokens
from privasync.web.admin.auth import Guard
from privasync.web.admin.handling import endpoint
from privasync.web.admin.openapi import PREFIX, Published, Registry


def registry() -> Registry:
    """Every admin operation; a new module of routes adds its ``OPERATIONS`` here."""
    return Registry().add(*tokens.OPERATIONS, *requests.OPERATIONS, *jobs.OPERATIONS,
                          *subjects.OPERATIONS, *mappings.OPERATIONS, *audit.OPERATIONS
                          ).publish(Published(SCHEMA_PATH, "The access bundle's JSON Schema "
                                              "(the export's answer validates against it)",
                                              "access_bundle_schema", ACCESS_SCHEMA))


def admin_routes(container: Container) -> list[Route]:
    declared = registry()
    guard = Guard(container)
    document = json.dumps(declared.document()).encode()

    async def openapi(request: Request) -> Response:
        return Response(document, media_type="application/json")

    def serve(published: Published) -> Route:
        body = json.dumps(published.schema).encode()

        async def schema(request: Request) -> Response:
            return Response(body, media_type="application/schema+json")

        return Route(published.full_path, schema, methods=["GET"])

    return [Route(PREFIX + "/openapi.json", openapi, methods=["GET"]),
            *(serve(published) for published in declared.published),
            *(Route(op.full_path, endpoint(op, container, guard), methods=[op.method])
              for op in declared.operations)]
