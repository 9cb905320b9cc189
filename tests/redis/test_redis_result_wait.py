"""`JobHandle.result()` on Redis waits on BullMQ's events stream, not by polling: one reader
per queue however many waiters, a job that ended before the wait is still seen, a wake-up for
a retried failure is only a hint, and a reader that cannot read leaves its waiters polling.
Real redis-server (the session fixture), real workers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis
from pikku_queue.adapters.redis import events
from pikku_queue.adapters.redis.backend import RedisBackend
from pikku_queue.backend import Backend, WorkerOptions
from pikku_queue.client import TypedQueue, known_queues
from pikku_queue.errors import JobFailedError
from pikku_queue.options import ProcessorOptions, RetryOptions
from pikku_queue.processor import Processor
from pikku_queue.records import JobState
from pydantic import TypeAdapter


class CountingReads:
    """Counts `get_job` calls: how often a waiter reads the job."""

    def __init__(self, backend: Any) -> None:
        self.reads = 0
        original = backend.get_job

        async def get_job(queue: str, job_id: str) -> Any:
            self.reads += 1
            return await original(queue, job_id)

        backend.get_job = get_job


def typed(name: str) -> TypedQueue[int, int]:
    return TypedQueue(name, TypeAdapter(int), TypeAdapter(int))


async def double(data: int) -> int:
    return data * 2


async def start_worker(backend: Backend, processor: Processor) -> tuple[WorkerOptions, Any]:
    options = WorkerOptions(processors=[processor], lease_ms=5_000)
    return options, asyncio.create_task(backend.run_worker(options))


async def xread_clients(backend: RedisBackend) -> int:
    client = await backend.client()
    listed: Any = await client.client_list()
    return sum(1 for c in listed if c.get("cmd") in ("xread", "xreadgroup"))


async def test_a_waiter_is_woken_by_the_events_stream_not_by_polling(
    backend: RedisBackend,
) -> None:
    queue = typed("woken")
    handle = await queue.enqueue(21, backend=backend)
    counter = CountingReads(backend)
    waiting = asyncio.create_task(handle.result(timeout=60))
    await asyncio.sleep(1.0)  # polling from 2 ms, growing by half, would read ~15 times here
    assert not waiting.done()
    assert counter.reads == 1  # the read before the wait, then nothing until the job ends
    options, worker = await start_worker(backend, Processor.from_function("woken", double))
    try:
        assert await waiting == 42
    finally:
        options.stop.set()
        await worker
        known_queues.pop("woken", None)
    assert counter.reads == 2  # one more, after the `completed` entry (`active` wakes nobody)


async def test_many_waiters_share_one_reader(backend: RedisBackend) -> None:
    queue = typed("many")
    handles = await queue.enqueue_many(list(range(50)), backend=backend)
    waits = [asyncio.create_task(h.result(timeout=60)) for h in handles]
    for _ in range(200):  # until every waiter is registered (bounded)
        reader = next(iter(backend._event_readers.values()), None)
        if reader is not None and len(reader.waiters) == 50 and reader.ready.done():
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)  # the reader's XREAD is on the wire
    assert len(backend._event_readers) == 1
    assert await xread_clients(backend) == 1  # one blocked XREAD, not fifty
    options, worker = await start_worker(backend, Processor.from_function("many", double))
    try:
        assert await asyncio.gather(*waits) == [n * 2 for n in range(50)]
    finally:
        options.stop.set()
        await worker
        known_queues.pop("many", None)
    assert not next(iter(backend._event_readers.values())).waiters  # all unregistered


async def test_a_job_finished_before_the_wait_is_seen(backend: RedisBackend) -> None:
    queue = typed("before")
    handle = await queue.enqueue(5, backend=backend)
    processor = Processor.from_function("before", double)
    await backend.run_worker(WorkerOptions(processors=[processor], burst=True))
    known_queues.pop("before", None)
    # The `completed` entry is already in the stream, before the reader's starting point:
    # only the read of the job can see it, and it must.
    assert await handle.result(timeout=10) == 10
    assert await handle.wait(timeout=10) is JobState.COMPLETED


async def test_a_retried_failure_wakes_the_waiter_which_waits_on(backend: RedisBackend) -> None:
    failed: list[int] = []

    async def flaky(data: int) -> int:
        if not failed:
            failed.append(1)
            raise ValueError("first attempt fails")
        return data + 1

    options = ProcessorOptions(retry_options=RetryOptions(attempts=2, delay=50))
    queue: TypedQueue[int, int] = TypedQueue("flaky", TypeAdapter(int), TypeAdapter(int), options)
    handle = await queue.enqueue(1, backend=backend)
    stop, worker = await start_worker(backend, Processor.from_function("flaky", flaky, options))
    try:
        assert await handle.result(timeout=60) == 2
    finally:
        stop.stop.set()
        await worker
        known_queues.pop("flaky", None)


async def test_a_job_that_fails_for_good_ends_the_wait(backend: RedisBackend) -> None:
    async def broken(data: int) -> int:
        raise ValueError("always")

    options = ProcessorOptions(retry_options=RetryOptions(attempts=1))
    queue: TypedQueue[int, int] = TypedQueue("broken", TypeAdapter(int), TypeAdapter(int), options)
    handle = await queue.enqueue(1, backend=backend)
    waiting = asyncio.create_task(handle.wait(timeout=60))
    stop, worker = await start_worker(backend, Processor.from_function("broken", broken, options))
    try:
        assert await waiting is JobState.FAILED
        with pytest.raises(JobFailedError, match="always"):
            await handle.result(timeout=10)
    finally:
        stop.stop.set()
        await worker
        known_queues.pop("broken", None)


async def test_a_reader_that_cannot_read_leaves_its_waiters_polling(
    backend: RedisBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable() -> aioredis.Redis:
        return aioredis.Redis(host="127.0.0.1", port=1, retry=None)  # nothing listens there

    queue = typed("nopush")
    handle = await queue.enqueue(4, backend=backend)
    monkeypatch.setattr(
        "pikku_queue.adapters.redis.backend.new_client", lambda settings: unreachable()
    )
    counter = CountingReads(backend)
    waiting = asyncio.create_task(handle.result(timeout=60))
    await asyncio.sleep(0.5)
    assert counter.reads > 3  # polling, since no push can come
    assert not backend._event_readers  # the failed reader forgot itself
    stop, worker = await start_worker(backend, Processor.from_function("nopush", double))
    try:
        assert await waiting == 8
    finally:
        stop.stop.set()
        await worker
        known_queues.pop("nopush", None)


async def test_an_idle_reader_stops(backend: RedisBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "IDLE_S", 0.0)
    monkeypatch.setattr(events, "BLOCK_MS", 50)
    queue = typed("idle")
    handle = await queue.enqueue(1, backend=backend)
    processor = Processor.from_function("idle", double)
    await backend.run_worker(WorkerOptions(processors=[processor], burst=True))
    known_queues.pop("idle", None)
    assert await handle.result(timeout=10) == 2
    for _ in range(200):  # bounded: the reader notices within a block or two
        if not backend._event_readers:
            break
        await asyncio.sleep(0.01)
    assert not backend._event_readers
    assert await xread_clients(backend) == 0


async def test_get_job_after_the_scripts_are_flushed(backend: RedisBackend) -> None:
    """The one-round-trip read (BullMQ's state script pipelined with the hash) meets NOSCRIPT
    on a Redis that lost its scripts (a restart): it falls back to the two calls, which load
    the script again, and the next read is one round trip again."""
    queue = typed("flushed")
    handle = await queue.enqueue(7, backend=backend)
    known_queues.pop("flushed", None)
    bull = await backend.queue("flushed")
    assert await backend.get_job("flushed", handle.id) is not None
    client = await backend.client()
    await client.script_flush()
    assert await backend._state_and_hash(bull, handle.id) is None  # NOSCRIPT: not this way
    info = await backend.get_job("flushed", handle.id)
    assert info is not None and info.state is JobState.WAITING and info.payload == 7
    both = await backend._state_and_hash(bull, handle.id)
    assert both is not None and both[0] == "waiting"
    assert await backend.get_job("flushed", "no-such-job") is None
