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


class CountingClient:
    """A real redis-py client whose pipelines count how many are on the wire at once."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.on_wire = 0
        self.most_on_wire = 0
        self.batches: list[int] = []

    def pipeline(self, transaction: bool = False) -> Any:
        pipe = self.client.pipeline(transaction=transaction)
        execute = pipe.execute

        async def counted(raise_on_error: bool = True) -> Any:
            self.on_wire += 1
            self.most_on_wire = max(self.most_on_wire, self.on_wire)
            self.batches.append(len(pipe.command_stack))
            try:
                await asyncio.sleep(0.01)  # the reply takes a while: callers keep coming
                return await execute(raise_on_error=raise_on_error)
            finally:
                self.on_wire -= 1

        pipe.execute = counted
        return pipe


async def test_completions_go_out_in_batches_more_than_one_on_the_wire(
    backend: RedisBackend,
) -> None:
    """`_Pipeline`: calls made while a batch is out go in the next one, up to `_IN_FLIGHT`
    batches on the wire at once (never more), and every caller gets its own reply."""
    from pikku_queue.adapters.redis.loop import _IN_FLIGHT, _Pipeline

    client = await backend.client()
    script = client.register_script("return ARGV[1]")
    assert await script(keys=[], args=["loaded"]) == "loaded"
    counting = CountingClient(client)
    pipeline = _Pipeline(counting, script)

    async def caller(n: int) -> Any:
        for _ in range(n % 4):
            await asyncio.sleep(0.002)
        return await pipeline.call([], [f"reply-{n}"])

    replies = await asyncio.wait_for(asyncio.gather(*(caller(n) for n in range(200))), 30)

    assert replies == [f"reply-{n}" for n in range(200)]
    assert sum(counting.batches) == 200
    assert 1 < len(counting.batches) < 200  # batched, not one by one
    assert counting.most_on_wire == _IN_FLIGHT > 1
    assert not pipeline.senders and not pipeline.pending


async def test_a_cancelled_sender_strands_no_caller(backend: RedisBackend) -> None:
    from pikku_queue.adapters.redis.loop import _Pipeline

    client = await backend.client()
    script = client.register_script("return ARGV[1]")
    await script(keys=[], args=["loaded"])
    pipeline = _Pipeline(CountingClient(client), script)
    first = pipeline.call([], ["first"])
    await asyncio.sleep(0.005)  # the first batch is on the wire
    later = [pipeline.call([], [f"later-{n}"]) for n in range(5)]
    for sender in list(pipeline.senders):
        sender.cancel()
    await asyncio.sleep(0)
    results = await asyncio.wait_for(asyncio.gather(first, *later, return_exceptions=True), 10)
    # the batch cut off on the wire fails its caller (never a hang); the calls that were
    # still gathering go out with a new sender and get their replies
    assert isinstance(results[0], RuntimeError)
    assert results[1:] == [f"later-{n}" for n in range(5)]
    assert not pipeline.pending and not pipeline.senders
