"""`JobHandle.result()` on SQLite: a worker settling in the same process wakes the waiter at
once (the push ends its pause); without one, the waiter polls, bounded (a worker in another
process tells nobody). No timing assertion: which path ended each pause is recorded."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from pikku_queue.adapters.sqlite.backend import SqliteBackend
from pikku_queue.backend import JobWatch, WorkerOptions
from pikku_queue.client import TypedQueue, known_queues
from pikku_queue.processor import Processor
from pikku_queue.records import JobState
from pydantic import TypeAdapter


async def double(data: int) -> int:
    return data * 2


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Each `JobWatch.changed` result: True when a push ended the pause."""
    seen: list[bool] = []
    original = JobWatch.changed

    async def changed(self: JobWatch, timeout_s: float) -> bool:
        got = await original(self, timeout_s)
        seen.append(got)
        return got

    monkeypatch.setattr(JobWatch, "changed", changed)
    return seen


async def test_a_worker_in_this_process_wakes_the_waiter(
    tmp_path: Path, pauses: list[bool]
) -> None:
    backend = SqliteBackend(tmp_path / "q.db")
    queue: TypedQueue[int, int] = TypedQueue("local", TypeAdapter(int), TypeAdapter(int))
    try:
        handle = await queue.enqueue(3, backend=backend)
        waiting = asyncio.create_task(handle.result(timeout=60))
        await asyncio.sleep(0.6)  # the pause has grown to its 250 ms ceiling by now
        assert not waiting.done()
        assert pauses and not any(pauses)  # polling so far: no push
        assert len(backend._watches[("local", handle.id)]) == 1
        options = WorkerOptions(processors=[Processor.from_function("local", double)])
        worker = asyncio.create_task(backend.run_worker(options))
        try:
            assert await waiting == 6
        finally:
            options.stop.set()
            await worker
        assert pauses[-1] is True  # the settle's push ended the last pause
        assert not backend._watches  # the waiter unregistered
        assert await handle.wait(timeout=10) is JobState.COMPLETED
    finally:
        known_queues.pop("local", None)
        await backend.close()


async def test_another_backend_object_polls(tmp_path: Path, pauses: list[bool]) -> None:
    """A worker on another backend object of the same file (as another process would be)
    pushes nothing to this one: the waiter sees the job by polling."""
    producer = SqliteBackend(tmp_path / "q.db")
    worker_side = SqliteBackend(tmp_path / "q.db")
    queue: TypedQueue[int, int] = TypedQueue("apart", TypeAdapter(int), TypeAdapter(int))
    try:
        handle = await queue.enqueue(4, backend=producer)
        waiting = asyncio.create_task(handle.result(timeout=60))
        processor = Processor.from_function("apart", double)
        report: Any = await worker_side.run_worker(
            WorkerOptions(processors=[processor], burst=True)
        )
        assert report.completed == 1
        assert await waiting == 8
        assert not any(pauses)  # every pause ran out: polled, never pushed
    finally:
        known_queues.pop("apart", None)
        await producer.close()
        await worker_side.close()


async def test_an_enqueue_in_this_process_wakes_an_idle_worker(tmp_path: Path) -> None:
    """With a poll interval far longer than the wait allows, only the enqueue's wake-up can
    start the job in time (the bound is for termination, not a timing)."""
    backend = SqliteBackend(tmp_path / "q.db")
    backend.poll_interval_s = 120.0
    queue: TypedQueue[int, int] = TypedQueue("woken", TypeAdapter(int), TypeAdapter(int))
    options = WorkerOptions(processors=[Processor.from_function("woken", double)])
    worker = asyncio.create_task(backend.run_worker(options))
    try:
        for _ in range(200):  # until the worker idles (bounded)
            if backend._job_waiters:
                break
            await asyncio.sleep(0.01)
        assert backend._job_waiters
        handle = await queue.enqueue(5, backend=backend)
        assert await handle.result(timeout=30) == 10
    finally:
        options.stop.set()
        await worker
        known_queues.pop("woken", None)
        await backend.close()
