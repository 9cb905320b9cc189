"""The shared conformance suite on the two embedded backends."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pikku_queue.adapters.memory import MemoryBackend
from pikku_queue.adapters.sqlite import SqliteBackend
from pikku_queue.conformance import BackendConformance


class TestMemoryConformance(BackendConformance):
    lease_ms = 400

    @pytest.fixture
    async def backend(self) -> AsyncIterator[MemoryBackend]:
        backend = MemoryBackend()
        yield backend
        await backend.close()


class TestSqliteConformance(BackendConformance):
    lease_ms = 400

    @pytest.fixture
    async def backend(self, tmp_path: Path) -> AsyncIterator[SqliteBackend]:
        backend = SqliteBackend(tmp_path / "queue.db")
        yield backend
        await backend.close()
