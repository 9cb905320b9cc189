"""The shared conformance suite, run against a real PostgreSQL started by the tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from pikku_queue.adapters.postgresql.backend import PostgresBackend
from pikku_queue.backend import Backend
from pikku_queue.conformance import BackendConformance

pytestmark = pytest.mark.postgresql


class TestPostgresConformance(BackendConformance):
    lease_ms = 1000

    @pytest.fixture
    async def backend(self, postgres_url: str) -> AsyncIterator[PostgresBackend]:
        backend = PostgresBackend(postgres_url)
        try:
            yield backend
        finally:
            await backend.close()

    async def inject_raw(self, backend: Backend, queue: str, raw: str | bytes) -> str:
        """A waiting job written by raw SQL, as another program sharing the database would.
        A text column in a UTF-8 database cannot hold bytes that are not UTF-8 (PostgreSQL
        refuses them), so that form cannot occur here."""
        assert isinstance(backend, PostgresBackend)
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError:
                pytest.skip("a PostgreSQL text column never holds bytes that are not UTF-8")
        job_id = uuid.uuid4().hex
        s = backend.settings.schema
        await backend._run(
            lambda tx: tx.run(
                f"INSERT INTO {s}.job (name, id, data) VALUES (%s, %s, %s)", (queue, job_id, raw)
            )
        )
        return job_id

    async def stored_raw(self, backend: Backend, queue: str, job_id: str) -> bytes:
        assert isinstance(backend, PostgresBackend)
        s = backend.settings.schema
        rows = await backend._run(
            lambda tx: tx.rows(
                f"SELECT convert_to(data, 'UTF8') FROM {s}.job WHERE name = %s AND id = %s"
                " AND state IN ('created', 'retry')",
                (queue, job_id),
            )
        )
        assert rows, f"no waiting job {job_id} in {queue}"
        return bytes(rows[0][0])
