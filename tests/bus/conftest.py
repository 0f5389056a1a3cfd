from collections.abc import Iterator

import pytest
from redis_server import RedisServer


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A fresh redis-server for one test (killed, paused or restarted by fault tests)."""
    with RedisServer() as srv:
        yield srv


@pytest.fixture
def redis_server_auth() -> Iterator[RedisServer]:
    """A redis-server that requires a password."""
    with RedisServer(password="s3cret-redis-pw") as srv:
        yield srv
