"""Session-wide test setup shared by every test folder.

One private `redis-server` (a free loopback port, a temp folder, AOF on) serves the Redis and
the Node interop tests alike; it starts the first time a test asks for it, once per session.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "redis"))

from redis_server import MISSING_REASON, REDIS_SERVER, RedisServer


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if REDIS_SERVER is None:
        pytest.skip(MISSING_REASON)
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.close()
