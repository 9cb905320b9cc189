"""The shared conformance suite on the two embedded backends."""

import json
import sqlite3
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy
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


INT64 = st.integers(-(2**63), 2**63 - 1)
REALS = st.floats(allow_nan=False)  # SQLite stores a NaN as NULL
TEXT = st.text(max_size=40)
BLOBS = st.binary(max_size=40)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)
JSON_TEXT = st.builds(json.dumps, JSON_VALUES)
NOT_NULL = st.one_of(INT64, REALS, TEXT, BLOBS, JSON_TEXT)
ANY_VALUE = st.none() | NOT_NULL
#: A final state is a verdict itself (written by the foreign program): nothing for a reader
#: to decide, so `state` draws every other value.
FINAL = ("completed", "failed", "dead_lettered")

#: Every column of a job but its identity (`seq`, `queue`, `id`: another value there is
#: another job), with the raw values another program sharing the file could put there.
SQLITE_FIELDS: dict[str, SearchStrategy[object]] = {
    "state": st.one_of(TEXT.filter(lambda s: s not in FINAL), INT64, REALS, BLOBS),
    "priority": NOT_NULL,
    "run_at": NOT_NULL,
    "payload": st.one_of(TEXT, BLOBS, JSON_TEXT),
    "attempts": NOT_NULL,
    "stalls": NOT_NULL,
    "token": NOT_NULL,
    "lease_until": ANY_VALUE,
    "worker": ANY_VALUE,
    "progress": ANY_VALUE,
    "result": ANY_VALUE,
    "error": ANY_VALUE,
    "enqueued_at": NOT_NULL,
    "finished_at": ANY_VALUE,
    "schedule": ANY_VALUE,
    "meta": ANY_VALUE,
}


async def overwrite(backend: Backend, queue: str, job_id: str, field: str, value: object) -> None:
    """Raw SQL, as another program sharing the file would write it."""
    assert isinstance(backend, SqliteBackend) and field in SQLITE_FIELDS

    def tx(conn: sqlite3.Connection) -> None:
        conn.execute(
            f"UPDATE jobs SET {field} = ? WHERE queue = ? AND id = ?", (value, queue, job_id)
        )

    await backend._db.write(tx)


class TestMemoryConformance(BackendConformance):
    lease_ms = 400

    async def inject_raw(self, backend: Backend, queue: str, raw: str | bytes) -> str:
        return await insert_raw(backend, queue, raw)

    async def stored_raw(self, backend: Backend, queue: str, job_id: str) -> bytes:
        return await read_raw(backend, queue, job_id)

    def stored_fields(self) -> Mapping[str, SearchStrategy[object]]:
        return SQLITE_FIELDS

    async def corrupt(
        self, backend: Backend, queue: str, job_id: str, field: str, value: object
    ) -> None:
        await overwrite(backend, queue, job_id, field, value)

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

    def stored_fields(self) -> Mapping[str, SearchStrategy[object]]:
        return SQLITE_FIELDS

    async def corrupt(
        self, backend: Backend, queue: str, job_id: str, field: str, value: object
    ) -> None:
        await overwrite(backend, queue, job_id, field, value)

    @pytest.fixture
    async def backend(self, tmp_path: Path) -> AsyncIterator[SqliteBackend]:
        backend = SqliteBackend(tmp_path / "queue.db")
        yield backend
        await backend.close()
