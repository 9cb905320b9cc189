"""The session's PostgreSQL cluster (tests/conftest.py) and a fresh schema per test, so tests
never see each other's queues."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from pg_server import PostgresServer
from pikku_queue.adapters.postgresql.backend import PostgresBackend


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The session server's URL with a schema of its own: a clean namespace per test."""
    return f"{postgres_server.url}?schema=t{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def backend(postgres_url: str) -> AsyncIterator[PostgresBackend]:
    backend = PostgresBackend(postgres_url)
    try:
        yield backend
    finally:
        await backend.close()
