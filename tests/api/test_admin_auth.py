"""Admin authentication over HTTP: 401 without a valid token, 403 without the scope, 429
after repeated failures, and the token in no answer and no log line."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from sqlalchemy import select, update

from core.db import api_tokens
from core.errors import Unauthenticated
from privasync.cli.main import configure_logging
from privasync.demo.stack import Stack
from privasync.web.admin.auth import FailureLimiter, bearer
from tests.api.conftest import issue_token
from tests.timing import scaled


def get_tokens(stack: Stack, token: str | None = None, **headers: str) -> requests.Response:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return requests.get(f"{stack.url}/api/v1/tokens", headers=headers, timeout=scaled(10))


def assert_unauthenticated(response: requests.Response, reason: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["error"] == "Unauthenticated"
    assert reason in response.json()["reason"]


def test_a_missing_or_malformed_authorization_is_401(embedded: Stack):
    assert_unauthenticated(get_tokens(embedded), "missing token")
    token = issue_token(embedded, "ops", "tokens:read")
    assert_unauthenticated(get_tokens(embedded, Authorization=f"Basic {token}"), "Bearer <token>")
    assert_unauthenticated(get_tokens(embedded, Authorization="Bearer "), "Bearer <token>")


def test_a_wrong_revoked_or_expired_token_is_401_without_saying_which(embedded: Stack):
    token = issue_token(embedded, "ops", "tokens:read")
    assert get_tokens(embedded, token).status_code == 200
    wrong = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert_unauthenticated(get_tokens(embedded, wrong), "invalid, expired or revoked token")
    engine, now = embedded.container.engine, embedded.container.clock()
    with engine.begin() as conn:
        conn.execute(update(api_tokens).values(expires_at=now - timedelta(seconds=1)))
    assert_unauthenticated(get_tokens(embedded, token), "invalid, expired or revoked token")
    with engine.begin() as conn:
        conn.execute(update(api_tokens).values(expires_at=None, revoked_at=now))
    assert_unauthenticated(get_tokens(embedded, token), "invalid, expired or revoked token")


def test_a_token_without_the_scope_is_403_naming_it(embedded: Stack):
    token = issue_token(embedded, "reader", "jobs:read", "audit:read")
    response = get_tokens(embedded, token)
    assert response.status_code == 403
    assert response.json() == {"error": "Forbidden", "scope": "tokens:read",
                               "reason": "this operation requires the scope tokens:read"}
    assert 'scope="tokens:read"' in response.headers["WWW-Authenticate"]


def test_repeated_failures_are_429_with_retry_after_and_nothing_checked(embedded: Stack):
    token = issue_token(embedded, "ops", "tokens:read")
    for _ in range(10):
        assert get_tokens(embedded, "ps_guess").status_code == 401
    refused = get_tokens(embedded, token)
    assert refused.status_code == 429, refused.text
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.json()["error"] == "RateLimited"
    openapi = requests.get(f"{embedded.url}/api/v1/openapi.json", timeout=scaled(10))
    assert openapi.status_code == 200  # public: no token, no limit


def test_last_use_is_recorded_but_not_on_every_request(embedded: Stack):
    token = issue_token(embedded, "ops", "tokens:read")

    def last_used() -> object:
        with embedded.container.engine.connect() as conn:
            return conn.execute(select(api_tokens.c.last_used_at)).scalar_one()

    assert last_used() is None
    assert get_tokens(embedded, token).status_code == 200
    first = last_used()
    assert first is not None
    assert get_tokens(embedded, token).status_code == 200
    assert last_used() == first


def test_no_token_reaches_an_answer_or_a_log_line(embedded: Stack,
                                                  capfd: pytest.CaptureFixture[str]):
    configure_logging("INFO")  # whatever an earlier test left
    token = issue_token(embedded, "ops", "tokens:read", "tokens:write")
    wrong = "ps_" + "W" * 43
    answers = [get_tokens(embedded, token), get_tokens(embedded, wrong)]
    answers.append(requests.post(f"{embedded.url}/api/v1/tokens", json={
        "name": "ci", "scopes": ["tokens:read"]}, headers={"Authorization": f"Bearer {token}"},
        timeout=scaled(10)))
    created = answers[-1].json()["token"]
    answers.append(get_tokens(embedded, created))
    assert [a.status_code for a in answers] == [200, 401, 201, 200]
    assert all(token not in a.text and wrong not in a.text for a in answers)
    out, err = capfd.readouterr()
    assert "admin.call" in out + err and "admin.refused" in out + err  # the logs were seen
    for secret in (token, wrong, created):
        assert secret not in out and secret not in err


def test_the_bearer_header_is_parsed_without_quoting_it():
    assert bearer("Bearer ps_abc") == "ps_abc" and bearer("bearer  ps_abc ") == "ps_abc"
    for header in (None, "", "Token ps_abc", "Bearer", "ps_abc"):
        with pytest.raises(Unauthenticated) as refused:
            bearer(header)
        assert "ps_abc" not in str(refused.value)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_failure_limit_is_a_sliding_window_per_address():
    clock = Clock()
    limiter = FailureLimiter(limit=3, window=60, clock=clock)
    for seconds in (0, 10, 20):
        clock.now = 1000.0 + seconds
        assert limiter.blocked_for("10.0.0.1") is None
        limiter.failed("10.0.0.1")
    assert limiter.blocked_for("10.0.0.1") == 40  # the first failure leaves the window at 60
    assert limiter.blocked_for("10.0.0.2") is None
    clock.now = 1060.0
    assert limiter.blocked_for("10.0.0.1") is None
    limiter.failed("10.0.0.1")
    assert limiter.blocked_for("10.0.0.1") == 10  # the one at 10 s is now the oldest of 3


def test_the_failure_limit_forgets_stale_addresses_and_stays_bounded():
    clock = Clock()
    limiter = FailureLimiter(limit=2, window=60, clock=clock, max_addresses=100)
    for i in range(250):
        limiter.failed(f"10.0.{i // 256}.{i % 256}")
    assert len(limiter._failures) == 100
    clock.now += 61
    limiter.failed("192.0.2.1")
    assert list(limiter._failures) == ["192.0.2.1"]
