"""Rate limits and deduplication on PostgreSQL beyond the conformance scenarios: every value
another program can store in `rate_window` / `dedupe_key` is read totally (ignored or
counted, never raised out of a lease or an enqueue, never more than `max` starts a window);
deduplication on the caller's connection follows its transaction; two producers with one key
make one job; an idle worker wakes when the window ends."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pikku_queue.adapters.postgresql.backend import PostgresBackend
from pikku_queue.client import TypedQueue
from pikku_queue.options import Dedupe, RateLimit
from pydantic import BaseModel, TypeAdapter

pytestmark = pytest.mark.postgresql

INT4 = st.integers(-(2**31), 2**31 - 1)
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
#: What a timestamptz column holds: any time PostgreSQL takes, +-infinity, and times around
#: now (a window just open, just ending, or past).
WHEN = (
    st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    )
    | st.sampled_from(["infinity", "-infinity"])
    | st.integers(-120_000, 120_000).map(lambda ms: f"now:{ms}")
)
EXAMPLES = 25


class Tick(BaseModel):
    n: int
    tenant: str = "a"


def ticks(name: str) -> TypedQueue[Tick, int]:
    return TypedQueue(name, TypeAdapter(Tick), TypeAdapter(int))


def at(value: object) -> tuple[str, Any]:
    """A WHEN draw as SQL and its parameter (`now:MS`: that far from the server's now)."""
    if isinstance(value, str) and value.startswith("now:"):
        return "clock_timestamp() + %s * interval '1 millisecond'", int(value[4:])
    return "%s", value


def drive(examples: int, strategy: st.SearchStrategy[Any], example: Any) -> Any:
    """Run the async `example(value)` for hypothesis's draws on the running loop (where the
    backend lives), from the thread `@given` runs in."""
    loop = asyncio.get_running_loop()

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=(Phase.explicit, Phase.generate),
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(value=strategy)
    def run(value: Any) -> None:
        asyncio.run_coroutine_threadsafe(example(value), loop).result(timeout=60)

    return asyncio.to_thread(run)


@pytest.mark.parametrize("grouped", [False, True], ids=["queue", "group"])
async def test_any_stored_window_never_breaks_a_lease_nor_lets_more_than_max_start(
    backend: PostgresBackend, grouped: bool
) -> None:
    await backend.migrate()
    s = backend.settings.schema
    most = 2

    async def example(value: tuple[object, int]) -> None:
        ends_at, starts = value
        queue = f"lim-{uuid.uuid4().hex[:10]}"
        rate = RateLimit(max=most, per_ms=60_000, group_key="tenant" if grouped else None)
        await backend.set_rate_limit(queue, rate)
        for n in range(5):
            await ticks(queue).enqueue(Tick(n=n), backend=backend)
        sql, param = at(ends_at)
        group = "g:a" if grouped else ""
        await backend._run(
            lambda tx: tx.run(
                f"INSERT INTO {s}.rate_window (name, grp, ends_at, starts)"
                f" VALUES (%s, %s, {sql}, %s)",
                (queue, group, param, starts),
            )
        )
        first = await backend.reserve(queue, 5, 60_000, "w")
        second = await backend.reserve(queue, 5, 60_000, "w")
        assert len(first) + len(second) <= most, (value, len(first), len(second))
        assert len(second) == 0  # the first lease left the window open, counted
        await backend.next_due_ms([queue])  # reads the window too: never raises
        await backend.set_rate_limit(queue, None)

    await drive(EXAMPLES, st.tuples(WHEN, INT4), example)


@pytest.mark.parametrize("mode", ["drop", "replace", "extend"])
async def test_any_stored_dedupe_key_never_breaks_an_enqueue(
    backend: PostgresBackend, mode: Any
) -> None:
    await backend.migrate()
    s = backend.settings.schema
    dedupe = Dedupe(key="k-{n}", ttl_ms=60_000, mode=mode)

    async def example(value: tuple[object, str]) -> None:
        expires_at, job_id = value
        queue = f"dd-{uuid.uuid4().hex[:10]}"
        sql, param = at(expires_at)
        await backend._run(
            lambda tx: tx.run(
                f"INSERT INTO {s}.dedupe_key (name, key, job_id, expires_at)"
                f" VALUES (%s, 'k-1', %s, {sql})",
                (queue, job_id, param),
            )
        )
        first = await ticks(queue).enqueue(Tick(n=1), delay=1000, dedupe=dedupe, backend=backend)
        again = await ticks(queue).enqueue(Tick(n=1), delay=1000, dedupe=dedupe, backend=backend)
        # the key now names one job, whatever was stored before (a replace took the first's
        # place, the first gone with it)
        if mode == "replace" and again.id != first.id:
            assert await backend.get_job(queue, first.id) is None, value
        else:
            assert again.id == first.id, value
        counts = await backend.counts(queue)
        assert counts.delayed <= 1

    await drive(EXAMPLES, st.tuples(WHEN, TEXT), example)


async def test_dedupe_on_the_callers_connection_follows_its_transaction(
    backend: PostgresBackend,
) -> None:
    queue = f"dtx-{uuid.uuid4().hex[:10]}"
    dedupe = Dedupe(key="order-{n}", ttl_ms=60_000)
    typed = ticks(queue)
    async with await psycopg.AsyncConnection.connect(backend.settings.conninfo) as conn:
        with contextlib.suppress(RuntimeError):
            async with conn.transaction():
                gone = await typed.enqueue(
                    Tick(n=1), dedupe=dedupe, backend=backend, connection=conn
                )
                raise RuntimeError("rolled back")
        # the rollback took the key with the job: the next enqueue is a job of its own
        kept = await typed.enqueue(Tick(n=1), dedupe=dedupe, backend=backend)
        assert kept.id != gone.id
        async with conn.transaction():
            again = await typed.enqueue(Tick(n=1), dedupe=dedupe, backend=backend, connection=conn)
        assert again.id == kept.id
    # an autocommit connection: the key's check and the insert still go together
    async with await psycopg.AsyncConnection.connect(
        backend.settings.conninfo, autocommit=True
    ) as conn:
        other = await typed.enqueue(Tick(n=2), dedupe=dedupe, backend=backend, connection=conn)
        same = await typed.enqueue(Tick(n=2), dedupe=dedupe, backend=backend, connection=conn)
        assert other.id == same.id != kept.id
    with psycopg.Connection.connect(backend.settings.conninfo) as sync_conn:
        with sync_conn.transaction():
            third = await typed.enqueue(
                Tick(n=2), dedupe=dedupe, backend=backend, connection=sync_conn
            )
        assert third.id == other.id
    assert (await backend.counts(queue)).waiting == 2


async def test_two_producers_with_one_key_make_one_job(backend: PostgresBackend) -> None:
    """The second producer's claim waits for the first one's commit, then sees its job."""
    queue = f"dcc-{uuid.uuid4().hex[:10]}"
    dedupe = Dedupe(key="one", ttl_ms=60_000)
    typed = ticks(queue)
    await backend.migrate()
    info = backend.settings.conninfo
    async with (
        await psycopg.AsyncConnection.connect(info) as first_conn,
        await psycopg.AsyncConnection.connect(info) as second_conn,
    ):
        # implicit transactions (not autocommit): each open until its commit
        first = await typed.enqueue(
            Tick(n=1), dedupe=dedupe, backend=backend, connection=first_conn
        )
        waiting = asyncio.create_task(
            typed.enqueue(Tick(n=2), dedupe=dedupe, backend=backend, connection=second_conn)
        )
        await asyncio.sleep(0.3)
        assert not waiting.done()  # held by the first producer's lock on the key
        await first_conn.commit()
        second = await asyncio.wait_for(waiting, 10)
        await second_conn.commit()
    assert second.id == first.id
    assert (await backend.counts(queue)).waiting == 1
    job = await backend.get_job(queue, first.id)
    assert job is not None and job.payload == {"n": 1, "tenant": "a"}


async def test_a_full_window_tells_an_idle_worker_when_it_ends(backend: PostgresBackend) -> None:
    queue = f"due-{uuid.uuid4().hex[:10]}"
    per_ms = 30_000
    await backend.set_rate_limit(queue, RateLimit(max=1, per_ms=per_ms))
    for n in range(2):
        await ticks(queue).enqueue(Tick(n=n), backend=backend)
    assert await backend.next_due_ms([queue]) is None  # no window yet, nothing delayed
    before = time.time() * 1000
    assert len(await backend.reserve(queue, 5, 60_000, "w")) == 1
    due = await backend.next_due_ms([queue])
    # the waiting job is due already but waits for the window: the worker sleeps till its end
    assert due is not None and before < due <= time.time() * 1000 + per_ms
    assert await backend.reserve(queue, 5, 60_000, "w") == []
    s = backend.settings.schema
    rows = await backend._run(
        lambda tx: tx.rows(f"SELECT grp, starts FROM {s}.rate_window WHERE name = %s", (queue,))
    )
    assert rows == [("", 1)]


async def test_batches_with_the_same_keys_in_any_order_never_deadlock(
    backend: PostgresBackend,
) -> None:
    """A batch claims its keys in one order (queue, then key), whatever order its jobs come
    in: two batches with the same keys reversed wait for each other, never in a circle."""
    queue = f"ddl-{uuid.uuid4().hex[:10]}"
    typed = ticks(queue)
    await backend.migrate()
    for round_ in range(5):
        dedupe = Dedupe(key=f"r{round_}-{{n}}", ttl_ms=60_000)
        jobs = [Tick(n=n) for n in range(30)]
        forward, backward = await asyncio.gather(
            typed.enqueue_many(jobs, dedupe=dedupe, backend=backend),
            typed.enqueue_many(jobs[::-1], dedupe=dedupe, backend=backend),
        )
        # one job per key, both batches pointing to it
        assert [h.id for h in forward] == [h.id for h in backward][::-1]
    assert (await backend.counts(queue)).waiting == 5 * 30
