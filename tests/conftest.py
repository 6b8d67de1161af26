"""Shared fixtures. Services are the machine's real ones: a test that needs one
fails (never skips) when it is missing, as in dramatiq's own conftest."""

from __future__ import annotations

import os

import pytest

REDIS_URL = os.environ.get("PRIVASYNC_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
POSTGRES_URL = os.environ.get(
    "PRIVASYNC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/privasync_test"
)


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is required at {REDIS_URL}: {exc} (run `make services`)")
    return REDIS_URL
