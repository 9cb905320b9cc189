"""NOTIFY on the producer's side: `JobHandle.result()` is woken when a job of its queue
finishes (completed, or failed for good), and a bulk enqueue (one JSON text per column)
stores every payload and id as it was given."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pikku_queue.adapters.postgresql.backend import PostgresBackend
from pikku_queue.backend import NotifiesFinished, WorkerOptions
from pikku_queue.client import JobHandle
from pikku_queue.errors import JobFailedError, NonRetryableError
from pikku_queue.processor import Processor
from pikku_queue.records import EnqueueRequest

pytestmark = pytest.mark.postgresql

#: Longer than any bound below: a wait that returns before it was woken, not timed out.
NEVER_S = 120.0


async def _worker(backend: PostgresBackend, queue: str) -> tuple[asyncio.Task[Any], Any]:
    async def run(data: dict[str, Any]) -> str:
        if data["n"] < 0:
            raise NonRetryableError("negative")
        return f"done {data['n']}"

    options = WorkerOptions(processors=[Processor.from_function(queue, run)])
    return asyncio.create_task(backend.run_worker(options)), options


@pytest.mark.parametrize("n", [1, -1], ids=["completed", "failed"])
async def test_a_watch_is_woken_when_a_job_of_its_queue_finishes(postgres_url: str, n: int) -> None:
    """The producer's backend is another process's (its own connections): only NOTIFY can
    tell it. Its wait would last `NEVER_S`; it returns within 30 s, woken."""
    producer, worker_side = PostgresBackend(postgres_url), PostgresBackend(postgres_url)
    assert isinstance(producer, NotifiesFinished)
    worker, options = await _worker(worker_side, "w")
    try:
        async with producer.watch_finished("w") as watch:
            await producer.enqueue(EnqueueRequest("w", {"n": n}, job_id="j"))
            await asyncio.wait_for(watch.wait(NEVER_S), 30)
        info = await producer.get_job("w", "j")
        assert info is not None and info.state.value == ("completed" if n > 0 else "failed")
    finally:
        options.stop.set()
        await asyncio.wait_for(worker, 30)
        await producer.close()
        await worker_side.close()


async def test_result_returns_through_the_notification(postgres_url: str) -> None:
    producer, worker_side = PostgresBackend(postgres_url), PostgresBackend(postgres_url)
    worker, options = await _worker(worker_side, "r")
    try:
        ids = await producer.enqueue_many([EnqueueRequest("r", {"n": n}) for n in (1, 2, -3)])
        handles = [JobHandle(job_id, "r", producer) for job_id in ids]
        assert await asyncio.wait_for(handles[0].result(), 30) == "done 1"
        assert await asyncio.wait_for(handles[1].result(), 30) == "done 2"
        with pytest.raises(JobFailedError, match="negative"):
            await asyncio.wait_for(handles[2].result(), 30)
    finally:
        options.stop.set()
        await asyncio.wait_for(worker, 30)
        await producer.close()
        await worker_side.close()


async def test_a_watch_of_another_queue_is_not_woken(backend: PostgresBackend) -> None:
    """A finished job of queue `a` wakes watchers of `a` only (the payload is the queue)."""
    worker, options = await _worker(backend, "a")
    try:
        async with backend.watch_finished("a") as on_a, backend.watch_finished("b") as on_b:
            await backend.enqueue(EnqueueRequest("a", {"n": 1}))
            await asyncio.wait_for(on_a.wait(NEVER_S), 30)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(on_b.wait(NEVER_S), 0.5)
    finally:
        options.stop.set()
        await asyncio.wait_for(worker, 30)


TRICKY = [
    {"s": "\\u0000 is six characters"},
    {"s": 'quotes " and \\ backslashes, {braces}, [brackets], commas'},
    {"s": "ü, 😀, \u2028 and \u2029, tabs\tand\nnewlines"},
    {"nested": [None, True, 1.5, -(2**53), {"": ""}]},
    {"s": "NULL"},
    {},
]


async def test_bulk_enqueue_stores_every_payload_and_id_as_given(backend: PostgresBackend) -> None:
    requests = [EnqueueRequest("t", payload) for payload in TRICKY]
    requests += [
        EnqueueRequest("t", {"n": 1}, job_id="NULL"),
        EnqueueRequest("t", {"n": 2}, job_id='a"b\\c,d{e}'),
        EnqueueRequest("t", {"n": 3}, job_id="ü😀"),
        EnqueueRequest("t", {"n": 4}, priority=7, delay_ms=600_000),
    ]
    ids = await backend.enqueue_many(requests)
    assert len(set(ids)) == len(requests)
    assert ids[len(TRICKY) :][:3] == ["NULL", 'a"b\\c,d{e}', "ü😀"]
    for request, job_id in zip(requests, ids, strict=True):
        info = await backend.get_job("t", job_id)
        assert info is not None and info.payload == request.payload, job_id
    counts = await backend.counts("t")
    assert (counts.waiting, counts.delayed) == (len(requests) - 1, 1)
    # the keyed ids exist now: enqueued again they stay as they are (one statement still)
    again = await backend.enqueue_many([EnqueueRequest("t", {"n": 9}, job_id="NULL")])
    assert again == ["NULL"]
    info = await backend.get_job("t", "NULL")
    assert info is not None and info.payload == {"n": 1}
