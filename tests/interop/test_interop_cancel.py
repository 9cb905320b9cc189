"""Cancelling on Redis as Node BullMQ (6.7, `ops.cjs`, `worker.cjs`) sees it: a waiting or
delayed job `JobHandle.cancel` removed is gone for Node too (BullMQ's own removal), a Node
worker never gets it, and a running job our worker stopped is in BullMQ's failed set, not
retried, where Node dashboards look."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from node_bullmq import NodeBullMQ
from pikku_queue.adapters.redis.backend import RedisBackend
from pikku_queue.backend import WorkerOptions
from pikku_queue.client import JobHandle
from pikku_queue.options import ProcessorOptions, RetryOptions
from pikku_queue.processor import Processor
from pikku_queue.records import CancelResult, EnqueueRequest, JobState
from redis_server import RedisServer

pytestmark = pytest.mark.redis


def _ops(node: NodeBullMQ, connection: str, prefix: str, queue: str, *ops: Any) -> list[Any]:
    return list(node.run("ops.cjs", connection, prefix, queue, json.dumps(list(ops))))


async def test_node_sees_a_cancelled_waiting_job_gone_and_never_runs_it(
    node_bullmq: NodeBullMQ, redis_server: RedisServer, connection: str, prefix: str
) -> None:
    queue = "cancel-node"
    backend = RedisBackend(f"{redis_server.url}?prefix={prefix}")
    try:
        ids = [
            await backend.enqueue(EnqueueRequest(queue, {"n": 1}, job_id="c-1")),
            await backend.enqueue(EnqueueRequest(queue, {"n": 2}, job_id="c-2")),
            await backend.enqueue(EnqueueRequest(queue, {"n": 3}, job_id="c-3", delay_ms=60_000)),
        ]
        assert await JobHandle(ids[0], queue, backend).cancel() is CancelResult.REMOVED
        assert await JobHandle(ids[2], queue, backend).cancel() is CancelResult.REMOVED
    finally:
        await backend.close()
    gone, delayed_gone, waiting, counts = await asyncio.to_thread(
        _ops, node_bullmq, connection, prefix, queue,
        {"op": "job", "id": "c-1"}, {"op": "job", "id": "c-3"}, {"op": "jobs"}, {"op": "counts"},
    )  # fmt: skip
    assert gone == {"id": "c-1", "missing": True}
    assert delayed_gone == {"id": "c-3", "missing": True}
    assert waiting == [{"id": "c-2", "data": {"n": 2}}]
    assert (counts["waiting"], counts["delayed"]) == (1, 0)
    seen = await asyncio.to_thread(node_bullmq.run, "worker.cjs", connection, prefix, queue, "1")
    assert [job["id"] for job in seen] == ["c-2"]


async def test_node_sees_a_cancelled_running_job_failed_and_not_retried(
    node_bullmq: NodeBullMQ, redis_server: RedisServer, connection: str, prefix: str
) -> None:
    queue = "cancel-node-running"
    backend = RedisBackend(f"{redis_server.url}?prefix={prefix}")
    started = asyncio.Event()

    async def hangs(data: Any) -> None:
        started.set()
        await asyncio.sleep(3600)

    processor = Processor.from_function(
        queue, hangs, ProcessorOptions(retry_options=RetryOptions(attempts=3))
    )
    try:
        job_id = await backend.enqueue(EnqueueRequest(queue, {"n": 1}, job_id="r-1"))
        worker = asyncio.ensure_future(
            backend.run_worker(WorkerOptions(processors=[processor], burst=True, lease_ms=2000))
        )
        await asyncio.wait_for(started.wait(), 30)
        handle = JobHandle(job_id, queue, backend)
        assert await handle.cancel() is CancelResult.REQUESTED
        report = await asyncio.wait_for(worker, 60)
        assert report.cancelled == 1
        assert await handle.status() == JobState.CANCELLED
        counts = await backend.counts(queue)
        assert (counts.cancelled, counts.failed) == (1, 0)
    finally:
        await backend.close()
    [seen] = await asyncio.to_thread(
        _ops, node_bullmq, connection, prefix, queue, {"op": "job", "id": "r-1"}
    )
    assert seen["state"] == "failed"
    assert seen["attemptsMade"] == 1  # not retried, though attempts=3
