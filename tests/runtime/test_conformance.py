"""The shared conformance suite on the two embedded backends."""

import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pikku_queue.adapters.memory.backend import MemoryBackend
from pikku_queue.adapters.sqlite.backend import SqliteBackend
from pikku_queue.backend import Backend
from pikku_queue.conformance import BackendConformance


async def insert_raw(backend: Backend, queue: str, raw: str | bytes) -> str:
    """A waiting job written by raw SQL, as another program sharing the file would. Bytes go
    in as TEXT (`CAST`), the harshest form: sqlite3 cannot even fetch such a value as str."""
    assert isinstance(backend, SqliteBackend)
    job_id = uuid.uuid4().hex
    value = "CAST(? AS TEXT)" if isinstance(raw, bytes) else "?"

    def tx(conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO jobs (queue, id, state, run_at, payload, enqueued_at)"
            f" VALUES (?, ?, 'waiting', 0, {value}, 0)",
            (queue, job_id, raw),
        )

    await backend._db.write(tx)
    return job_id


async def read_raw(backend: Backend, queue: str, job_id: str) -> bytes:
    """The payload column of a waiting job, as bytes (`CAST`), past every pikkugen reader."""
    assert isinstance(backend, SqliteBackend)

    def tx(conn: sqlite3.Connection) -> bytes:
        row = conn.execute(
            "SELECT CAST(payload AS BLOB) FROM jobs WHERE queue = ? AND id = ?"
            " AND state = 'waiting'",
            (queue, job_id),
        ).fetchone()
        assert row is not None, f"no waiting job {job_id} in {queue}"
        return bytes(row[0])

    return await backend._db.read(tx)


class TestMemoryConformance(BackendConformance):
    lease_ms = 400

    async def inject_raw(self, backend: Backend, queue: str, raw: str | bytes) -> str:
        return await insert_raw(backend, queue, raw)

    async def stored_raw(self, backend: Backend, queue: str, job_id: str) -> bytes:
        return await read_raw(backend, queue, job_id)

    @pytest.fixture
    async def backend(self) -> AsyncIterator[MemoryBackend]:
        backend = MemoryBackend()
        yield backend
        await backend.close()


class TestSqliteConformance(BackendConformance):
    lease_ms = 400

    async def inject_raw(self, backend: Backend, queue: str, raw: str | bytes) -> str:
        return await insert_raw(backend, queue, raw)

    async def stored_raw(self, backend: Backend, queue: str, job_id: str) -> bytes:
        return await read_raw(backend, queue, job_id)

    @pytest.fixture
    async def backend(self, tmp_path: Path) -> AsyncIterator[SqliteBackend]:
        backend = SqliteBackend(tmp_path / "queue.db")
        yield backend
        await backend.close()
