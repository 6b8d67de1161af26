"""Finding what a processor answered, and holding it against its contract."""

from __future__ import annotations

import json
import re
from typing import TypeVar

from pydantic import BaseModel

from privasync.emulators.contracts import opendsr as spec
from privasync.emulators.opendsr import Answer, OpenDsrEmulator

M = TypeVar("M", bound=BaseModel)


def dialect_of(processor: OpenDsrEmulator) -> spec.Dialect:
    return processor.dialects[0]


def last(processor: OpenDsrEmulator, method: str, path: str) -> Answer:
    """The latest answer to ``method`` on a path matching ``path`` (a regex)."""
    found = [a for a in processor.answers if a.method == method and re.fullmatch(path, a.path)]
    assert found, f"no answer to {method} {path}"
    return found[-1]


def holds(answer: Answer, status: int, model: type[M]) -> M:
    """The answer has ``status`` and a JSON body of ``model``'s shape."""
    assert answer.status == status, (answer.status, answer.body)
    return model.model_validate_json(answer.body)


def signed_under(answer: Answer, dialect: spec.Dialect, domain: str) -> None:
    """§8.3/§9.3 (and OpenGDPR's names for 1.0): the domain and signature headers."""
    headers = {k.lower(): v for k, v in answer.headers.items()}
    assert headers[dialect.domain_header.lower()] == domain
    assert headers[dialect.signature_header.lower()]


def refusal(answer: Answer, status: int) -> spec.ErrorObject:
    """§7.5-§7.7: the error object, its code the HTTP status, and nothing sent echoed."""
    body = holds(answer, status, spec.ErrorBody)
    assert body.error is not None and body.error.code == status
    assert "example.com" not in json.dumps(json.loads(answer.body))
    return body.error
