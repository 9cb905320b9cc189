"""Transactional enqueue: a job written on the caller's own connection exists once that
transaction commits and never after a rollback, whichever way the caller holds PostgreSQL
(psycopg async or sync, SQLAlchemy's AsyncSession, Django's connection); a bulk enqueue is one
statement; the commit's NOTIFY wakes an idle worker."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import psycopg
import pytest
from pikku_queue.adapters.postgresql.backend import PostgresBackend
from pikku_queue.backend import WorkerOptions
from pikku_queue.client import TypedQueue, queue_job
from pikku_queue.errors import BackendError
from pikku_queue.options import ProcessorOptions
from pikku_queue.processor import Processor
from pikku_queue.records import JobState
from pydantic import BaseModel, TypeAdapter

pytestmark = pytest.mark.postgresql


class Order(BaseModel):
    n: int


def typed(name: str) -> TypedQueue[Order, int]:
    return TypedQueue(name, TypeAdapter(Order), TypeAdapter(int))


@pytest.fixture
def queue() -> str:
    return f"tx-{uuid.uuid4().hex[:10]}"


async def run_burst(backend: PostgresBackend, queue: str) -> list[int]:
    seen: list[int] = []

    async def work(data: Order) -> int:
        seen.append(data.n)
        return data.n

    processor = Processor.from_function(queue, work, ProcessorOptions())
    await asyncio.wait_for(
        backend.run_worker(WorkerOptions(processors=[processor], burst=True)), 30
    )
    return seen


def conninfo(backend: PostgresBackend) -> str:
    return backend.settings.conninfo


async def test_psycopg_async_commit_runs_once_and_rollback_leaves_nothing(
    backend: PostgresBackend, queue: str
) -> None:
    async with await psycopg.AsyncConnection.connect(conninfo(backend)) as conn:
        async with conn.transaction():
            await conn.execute("CREATE TEMP TABLE orders (n int)")
        with contextlib.suppress(RuntimeError):
            async with conn.transaction():
                await conn.execute("INSERT INTO orders VALUES (1)")
                gone = await typed(queue).enqueue(Order(n=1), backend=backend, connection=conn)
                assert await gone.info() is None  # not committed: no other connection sees it
                raise RuntimeError("the order failed")
        assert await gone.info() is None  # rolled back with the order
        async with conn.transaction():
            await conn.execute("INSERT INTO orders VALUES (2)")
            kept = await typed(queue).enqueue(Order(n=2), backend=backend, connection=conn)
            assert await kept.info() is None
        assert await kept.status() == JobState.WAITING
    assert await run_burst(backend, queue) == [2]
    assert await kept.result(timeout=10) == 2
    assert (await backend.counts(queue)).completed == 1


async def test_psycopg_sync_connection_and_queue_job(backend: PostgresBackend, queue: str) -> None:
    typed(queue)  # known to queue_job
    with psycopg.Connection.connect(conninfo(backend)) as conn:
        with contextlib.suppress(RuntimeError), conn.transaction():
            await queue_job(queue, {"n": 1}, backend=backend, connection=conn)
            raise RuntimeError("rolled back")
        with conn.transaction():
            handle = await queue_job(queue, {"n": 2}, backend=backend, connection=conn)
            cursor = conn.cursor()  # the caller's own transaction sees its job already
            cursor.execute(
                f"SELECT count(*) FROM {backend.settings.schema}.job WHERE name = %s", (queue,)
            )
            assert cursor.fetchone() == (1,)
    assert await run_burst(backend, queue) == [2]
    assert await handle.status() == JobState.COMPLETED


class CountingConnection(psycopg.AsyncConnection[Any]):
    """A psycopg connection that counts the statements sent on it."""

    statements = 0

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        type(self).statements += 1
        return await super().execute(*args, **kwargs)


async def test_bulk_enqueue_in_a_transaction_is_one_statement(
    backend: PostgresBackend, queue: str
) -> None:
    await backend.migrate()
    async with await CountingConnection.connect(conninfo(backend)) as conn, conn.transaction():
        before = CountingConnection.statements
        handles = await typed(queue).enqueue_many(
            [Order(n=n) for n in range(500)], backend=backend, connection=conn
        )
        assert CountingConnection.statements - before == 1
    assert len({h.id for h in handles}) == 500
    assert sorted(await run_burst(backend, queue)) == list(range(500))


async def test_sqlalchemy_async_session(backend: PostgresBackend, queue: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    url = conninfo(backend).replace("postgresql://", "postgresql+psycopg://", 1)
    engine = create_async_engine(url)
    try:
        async with AsyncSession(engine) as session:
            with contextlib.suppress(RuntimeError):
                async with session.begin():
                    await session.execute(text("SELECT 1"))
                    await typed(queue).enqueue(Order(n=1), backend=backend, connection=session)
                    raise RuntimeError("rolled back")
            async with session.begin():
                await session.execute(text("SELECT 1"))
                handle = await typed(queue).enqueue(Order(n=2), backend=backend, connection=session)
                assert await handle.info() is None
    finally:
        await engine.dispose()
    assert await run_burst(backend, queue) == [2]
    assert await handle.status() == JobState.COMPLETED


def django_enqueue(url: str, queue: str, backend: PostgresBackend) -> str:
    """Django's documented way, in a sync thread as a Django view runs: `transaction.atomic`
    and `enqueue_sync(..., connection=django.db.connection)`."""
    import django
    from django.conf import settings

    if not settings.configured:
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        settings.configure(
            DATABASES={
                "default": {
                    "ENGINE": "django.db.backends.postgresql",
                    "NAME": parts.path.lstrip("/"),
                    "USER": parts.username,
                    "HOST": parts.hostname,
                    "PORT": parts.port,
                }
            },
            USE_TZ=True,
        )
        django.setup()
    from django.db import connection, transaction

    with contextlib.suppress(RuntimeError), transaction.atomic():
        typed(queue).enqueue_sync(Order(n=1), backend=backend, connection=connection)
        raise RuntimeError("rolled back")
    with transaction.atomic():
        handle = typed(queue).enqueue_sync(Order(n=2), backend=backend, connection=connection)
    connection.close()
    return handle.id


async def test_django_connection(backend: PostgresBackend, queue: str) -> None:
    await backend.migrate()
    job_id = await asyncio.to_thread(django_enqueue, conninfo(backend), queue, backend)
    assert await run_burst(backend, queue) == [2]
    assert (await backend.get_job(queue, job_id)) is not None


async def test_connection_on_a_backend_without_transactions_is_refused(queue: str) -> None:
    from pikku_queue.adapters.memory.backend import MemoryBackend

    memory = MemoryBackend()
    try:
        with pytest.raises(BackendError, match="cannot enqueue inside your transaction"):
            await typed(queue).enqueue(Order(n=1), backend=memory, connection=object())
    finally:
        await memory.close()


async def test_a_foreign_object_as_connection_is_refused(
    backend: PostgresBackend, queue: str
) -> None:
    with pytest.raises(BackendError, match="psycopg"):
        await typed(queue).enqueue(Order(n=1), backend=backend, connection=object())


async def test_commit_notifies_an_idle_worker(backend: PostgresBackend, queue: str) -> None:
    """The worker's poll fallback is an hour: only the commit's NOTIFY can start the job."""
    backend.poll_interval_s = 3600
    done = asyncio.Event()

    async def work(data: Order) -> int:
        done.set()
        return data.n

    options = WorkerOptions(processors=[Processor.from_function(queue, work, ProcessorOptions())])
    worker = asyncio.create_task(backend.run_worker(options))
    try:
        await asyncio.sleep(0.3)  # the worker is idle, waiting on LISTEN
        conn = await psycopg.AsyncConnection.connect(conninfo(backend))
        async with conn, conn.transaction():
            await typed(queue).enqueue(Order(n=7), backend=backend, connection=conn)
        await asyncio.wait_for(done.wait(), 20)
    finally:
        options.stop.set()
        await asyncio.wait_for(worker, 30)
