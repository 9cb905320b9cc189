"""One private redis-server for the whole test session, and a fresh key prefix per test so
tests never see each other's queues."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from pikku_queue.adapters.redis.backend import RedisBackend
from redis_server import RedisServer


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session server's URL with a prefix of its own: a clean namespace per test."""
    return f"{redis_server.url}?prefix=t{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def backend(redis_url: str) -> AsyncIterator[RedisBackend]:
    backend = RedisBackend(redis_url)
    try:
        yield backend
    finally:
        await backend.close()
