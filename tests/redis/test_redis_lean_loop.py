"""The lean worker loop (adapters/redis/loop.py) against a real redis-server: a slot goes on
with the job its completion fetched, the completions of all slots are pipelined, and a server
that lost BullMQ's scripts (SCRIPT FLUSH, as after a restart) still gets every job finished."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pikku_queue.adapters.redis.backend import RedisBackend
from pikku_queue.backend import WorkerOptions
from pikku_queue.options import ProcessorOptions
from pikku_queue.processor import Processor
from pikku_queue.records import EnqueueRequest

pytestmark = pytest.mark.redis


async def fill(backend: RedisBackend, queue: str, count: int) -> list[str]:
    return await backend.enqueue_many(
        [EnqueueRequest(queue=queue, payload={"n": n}) for n in range(count)]
    )


async def test_every_job_completes_once_with_its_result(backend: RedisBackend) -> None:
    ids = await fill(backend, "lean", 120)
    seen: list[int] = []

    async def double(data: dict[str, Any]) -> int:
        seen.append(data["n"])
        return int(data["n"]) * 2

    processor = Processor.from_function("lean", double, ProcessorOptions(concurrency=8))
    report = await asyncio.wait_for(
        backend.run_worker(WorkerOptions(processors=[processor], burst=True)), 60
    )

    assert report.completed == 120 and sorted(seen) == list(range(120))
    counts = await backend.counts("lean")
    assert (counts.completed, counts.waiting, counts.active) == (120, 0, 0)
    for n, job_id in enumerate(ids):
        info = await backend.get_job("lean", job_id)
        assert info is not None and info.result == n * 2


async def test_a_server_that_lost_the_scripts_still_finishes_every_job(
    backend: RedisBackend,
) -> None:
    await fill(backend, "flushed", 60)
    client = await backend.client()
    flushed = asyncio.Event()

    async def flush_once(data: dict[str, Any]) -> None:
        if data["n"] == 10 and not flushed.is_set():
            await client.script_flush()
            flushed.set()

    processor = Processor.from_function("flushed", flush_once, ProcessorOptions(concurrency=5))
    report = await asyncio.wait_for(
        backend.run_worker(WorkerOptions(processors=[processor], burst=True)), 60
    )

    assert flushed.is_set()
    assert report.completed == 60
    assert (await backend.counts("flushed")).completed == 60
