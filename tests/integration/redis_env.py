"""Where the Redis tests run: the server named by GLIMPSE_REDIS_URL, on a database of their own.

Tests of the Redis adapters use database 11 (not 0, which the application uses) and
a random key prefix per test, and delete their keys afterwards, so they can run
beside other engineers' tests on a shared server. Channels are global to a Redis
server whatever the database, so channel names carry the prefix too.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

TEST_DB = 11


def redis_url(db: int = TEST_DB) -> str:
    url = os.environ.get("GLIMPSE_REDIS_URL")
    if not url:
        pytest.skip("no Redis server: GLIMPSE_REDIS_URL is not set (make test or infra.servers.stack sets it)")
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{db}"))


def unique_prefix() -> str:
    return f"t{uuid.uuid4().hex[:12]}:"


def delete_prefixed(client: redis.Redis, prefix: str) -> None:
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])


@pytest.fixture
def prefix() -> str:
    return unique_prefix()


@pytest.fixture
def r(prefix: str) -> Iterator[redis.Redis]:
    """A client on the test database; every key under this test's prefix goes afterwards."""
    client = redis.Redis.from_url(redis_url())
    try:
        yield client
    finally:
        delete_prefixed(client, prefix)
        client.close()
