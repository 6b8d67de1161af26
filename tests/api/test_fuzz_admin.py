"""schemathesis against the admin API's own OpenAPI document (GET /api/v1/openapi.json), on
the real Starlette app (ASGI) over SQLite: every operation, with a token holding every
scope and with none. No answer is a 5xx, and every answer conforms to the document: its
status is one the operation declares, its body the declared schema, and an operation
called without a token is refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks as schemathesis_checks
from schemathesis.specs.openapi import checks as openapi_checks

from privasync.web.admin.routes import registry
from tests.api.door import Door, open_door
from tests.api.fuzzing import SENT
from tests.conftest import make_database

EXAMPLES = 25
CHECKS = [schemathesis_checks.not_a_server_error, openapi_checks.status_code_conformance,
          openapi_checks.content_type_conformance, openapi_checks.response_schema_conformance,
          openapi_checks.response_headers_conformance]


@pytest.fixture(scope="module")
def admin_door(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Door]:
    tmp: Path = tmp_path_factory.mktemp("admin-fuzz")
    yield from open_door(make_database("sqlite", tmp), tmp)


@pytest.fixture(scope="module")
def admin_schema(admin_door: Door) -> Any:
    return schemathesis.openapi.from_asgi("/api/v1/openapi.json", admin_door.client.app)


@pytest.fixture(scope="module")
def every_scope(admin_door: Door) -> str:
    # A name the schema's generated names (^[a-z0-9]...) will not hit by chance.
    return admin_door.token(name="fuzz-admin-0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c")


# Every operation the document declares (schemathesis' own pytest loader does not run
# under this pytest, so each operation's strategy is driven by hypothesis here).
OPERATIONS = [(method.upper(), path) for path, item in registry().document()["paths"].items()
              for method in item]
PUBLIC = {"/api/v1/openapi.json", *(p.full_path for p in registry().published)}
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("with_token", [True, False], ids=["token", "no-token"])
@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_the_admin_api_keeps_to_its_document(admin_schema: Any, every_scope: str,
                                            method: str, path: str, with_token: bool) -> None:
    operation = admin_schema[path][method]
    auth = {"Authorization": f"Bearer {every_scope}"} if with_token else {}

    @FUZZ
    @given(case=operation.as_strategy())
    def call(case: Any) -> None:
        SENT["admin api"] += 1
        if not with_token:
            case.headers = {k: v for k, v in (case.headers or {}).items()
                            if k.lower() != "authorization"}
        response = case.call(headers=auth)
        case.validate_response(response, checks=CHECKS)
        if not with_token and path not in PUBLIC:
            # The failure limiter counts per address: past 10 a minute it answers 429.
            assert response.status_code in (401, 429), response.text

    call()
