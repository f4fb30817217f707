"""A real Redis per test module (skipped, saying why, when redis-server is missing)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.redis_server import REDIS_MISSING, RedisServer, redis_binary


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    binary = redis_binary()
    if binary is None:
        pytest.skip(REDIS_MISSING)
    server = RedisServer(binary).start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def fresh_redis(redis_server: RedisServer) -> RedisServer:
    """The module's server, running and emptied."""
    if not redis_server.answers():
        redis_server.start()
    import redis

    redis.Redis.from_url(redis_server.url).flushdb()
    return redis_server
