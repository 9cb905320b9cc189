"""Session-wide test setup shared by every test folder.

One private `redis-server` (a free loopback port, a temp folder, AOF on) serves the Redis and
the Node interop tests alike, and one private PostgreSQL cluster the PostgreSQL tests; each
starts the first time a test asks for it, once per session.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "redis"))
sys.path.insert(0, str(Path(__file__).resolve().parent / "postgresql"))

from pg_server import INITDB, PostgresServer
from pg_server import MISSING_REASON as PG_MISSING_REASON
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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One private PostgreSQL cluster for the session (initdb in a temp folder, a free
    loopback port), started the first time a test asks for it."""
    if INITDB is None:
        pytest.skip(PG_MISSING_REASON)
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.close()
