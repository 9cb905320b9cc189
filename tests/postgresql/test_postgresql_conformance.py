"""The shared conformance suite, run against a real PostgreSQL started by the tests."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy
from pikku_queue.adapters.postgresql.backend import PostgresBackend
from pikku_queue.adapters.postgresql.jobs import FAR_FUTURE_MS
from pikku_queue.backend import Backend
from pikku_queue.conformance import BackendConformance, StoredValueRefused

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

    def stored_fields(self) -> Mapping[str, SearchStrategy[object]]:
        return POSTGRES_FIELDS

    async def corrupt(
        self, backend: Backend, queue: str, job_id: str, field: str, value: object
    ) -> None:
        """Raw SQL, as another program sharing the database would write it."""
        assert isinstance(backend, PostgresBackend) and field in POSTGRES_FIELDS
        s = backend.settings.schema
        try:
            await backend._run(
                lambda tx: tx.run(
                    f"UPDATE {s}.job SET {field} = %s WHERE name = %s AND id = %s",
                    (value, queue, job_id),
                )
            )
        except REFUSED as exc:
            raise StoredValueRefused(f"{field} = {value!r}: {exc}") from exc

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


TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
INT4 = st.integers(-(2**31), 2**31 - 1)
INT8 = st.integers(-(2**63), 2**63 - 1)
WHEN = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)
OPTIONAL_TEXT = st.none() | TEXT
JSON_TEXT = st.recursive(
    st.none() | st.booleans() | st.integers() | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=5,
).map(json.dumps)

#: Each column of a job row with what another program can store there: the column's own
#: type, NULL where the column allows it; `state` only the values its CHECK allows that are
#: not final. `priority` draws values of any type: those PostgreSQL refuses for an integer
#: column (text, NULL, NaN, a boolean) leave the job as it was (`StoredValueRefused`); times
#: include +-infinity, which a timestamptz holds; `start_after` reaches year 9999, a due time
#: no pikkugen writer sets, which the lease refuses rather than wait for.
#: What PostgreSQL raises for a value its column's type or constraints refuse.
REFUSED = (
    psycopg.errors.DataError,
    psycopg.errors.NotNullViolation,
    psycopg.errors.DatatypeMismatch,
)
INFINITE = st.sampled_from(["infinity", "-infinity"])
_NOW = datetime.now(UTC)
#: A due time a pikkugen writer could set (ahead, up to `FAR_FUTURE_MS`) makes a plain delayed
#: job, which a burst worker rightly waits for: that is no corrupt value, so the strategy
#: leaves those out (everything before, due at once, and after, refused, stays in).
NOT_A_PLAIN_DELAY = WHEN.filter(
    lambda when: not (_NOW < when <= _NOW + timedelta(milliseconds=FAR_FUTURE_MS))
)
POSTGRES_FIELDS: dict[str, SearchStrategy[object]] = {
    "state": st.sampled_from(["created", "retry", "active"]),
    "priority": st.one_of(
        INT4, st.integers(), st.none(), st.booleans(), st.floats(), TEXT, st.integers().map(str)
    ),
    "start_after": NOT_A_PLAIN_DELAY | INFINITE,
    "meta": OPTIONAL_TEXT | JSON_TEXT,
    "data": TEXT | JSON_TEXT,
    "retry_count": INT4,
    "stalled_count": INT4,
    "lease_token": INT8,
    "created_on": WHEN | INFINITE,
    "started_on": st.none() | WHEN,
    "lease_until": st.none() | WHEN,
    "worker": OPTIONAL_TEXT,
    "progress": OPTIONAL_TEXT | JSON_TEXT,
    "output": OPTIONAL_TEXT | JSON_TEXT,
    "error": OPTIONAL_TEXT | JSON_TEXT,
    "schedule_key": OPTIONAL_TEXT,
    "dead_letter": OPTIONAL_TEXT,
}
