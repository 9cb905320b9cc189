"""A mixed fleet on one queue: Node BullMQ producers and workers beside pikkugen workers, one
rule for retries (the processor's declaration) whoever takes an attempt."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from node_bullmq import NodeBullMQ
from pikku_queue.adapters.redis.backend import RedisBackend
from pikku_queue.adapters.redis.jobs import ERROR_FIELD, OUTCOME_FIELD
from pikku_queue.backend import WorkerOptions
from pikku_queue.context import JobContext
from pikku_queue.errors import NonRetryableError
from pikku_queue.options import ProcessorOptions, RetryOptions
from pikku_queue.processor import Processor
from pikku_queue.records import JobState
from redis_server import RedisServer

pytestmark = pytest.mark.redis

Payload = dict[str, Any]


@pytest.fixture
async def backend(redis_server: RedisServer, prefix: str) -> AsyncIterator[RedisBackend]:
    backend = RedisBackend(f"{redis_server.url}?prefix={prefix}")
    yield backend
    await backend.close()


@pytest.fixture
def queue() -> str:
    return f"fleet-{uuid.uuid4().hex[:8]}"


def node_ops(node: NodeBullMQ, connection: str, prefix: str, queue: str, ops: list[Any]) -> Any:
    return node.run("ops.cjs", connection, prefix, queue, json.dumps(ops), timeout=120)


@pytest.mark.slow
async def test_node_jobs_without_attempts_follow_the_declaration_on_a_node_worker_too(
    backend: RedisBackend, node_bullmq: NodeBullMQ, connection: str, prefix: str, queue: str
) -> None:
    """300 jobs added by Node BullMQ without `attempts` (BullMQ's default: one attempt), served
    by one pikkugen worker and one Node worker; both processors fail a job's first two attempts
    and complete the third. The declaration (3 attempts) is written into each job's stored opts
    when pikkugen first takes it, so the Node worker taking attempt 2 retries it as well: all
    300 complete, none fails (before: 290 failed)."""
    total = 300
    adds = [{"op": "add", "data": {"n": n}} for n in range(total)]
    await asyncio.to_thread(node_ops, node_bullmq, connection, prefix, queue, adds)
    first_attempts: set[str] = set()
    all_taken = asyncio.Event()
    ours: Counter[int] = Counter()

    async def flaky(ctx: JobContext, data: Payload) -> None:
        ours[ctx.attempt] += 1
        if ctx.attempt == 1:
            first_attempts.add(ctx.job_id)
            if len(first_attempts) == total:
                all_taken.set()
        if ctx.attempt <= 2:
            raise RuntimeError(f"flaky: attempt {ctx.attempt}")

    declared = ProcessorOptions(
        concurrency=20, retry_options=RetryOptions(attempts=3, backoff="fixed", delay=1000)
    )
    processor = Processor.from_function(queue, flaky, declared)
    worker = asyncio.ensure_future(
        backend.run_worker(WorkerOptions(processors=[processor], burst=True))
    )
    node: subprocess.Popen[str] | None = None
    try:
        # Node's worker joins once pikkugen has started every job once: a Node worker taking a
        # foreign job's first attempt follows the job's own opts (see docs/reliability.md).
        await asyncio.wait_for(all_taken.wait(), 60)
        node = node_bullmq.start("flaky_worker.cjs", connection, prefix, queue, str(total))
        report = await asyncio.wait_for(worker, 150)
        out, err = await asyncio.to_thread(node.communicate, timeout=150)
    finally:
        if not worker.done():
            worker.cancel()
        if node is not None and node.poll() is None:
            node.kill()
    assert node.returncode == 0, err
    seen = json.loads(out.strip().splitlines()[-1])
    [counts] = await asyncio.to_thread(
        node_ops, node_bullmq, connection, prefix, queue, [{"op": "counts"}]
    )
    assert (counts["completed"], counts["failed"]) == (total, 0), (counts, seen, report)
    assert seen["failedForGood"] == 0, seen
    # Both took later attempts; Node's failures at attempt 2 were retried as declared.
    assert seen["byAttempt"].get("1", 0) > 0, seen
    assert ours[2] + ours[3] > 0, ours
    assert ours[1] == total


async def test_a_dead_letter_retried_from_node_and_completed_is_no_longer_listed(
    backend: RedisBackend, node_bullmq: NodeBullMQ, connection: str, prefix: str, queue: str
) -> None:
    """Dead-lettered by pikkugen, then retried the Bull Board way (Node's `job.retry()`) and
    completed by a Node worker: `dlq list` no longer shows its record (not while it waits
    either, so a replay cannot run it twice), and its hash loses pikkugen's outcome fields."""
    dlq = f"{queue}-dlq"

    async def refuses(data: Payload) -> None:
        raise NonRetryableError("not today")

    [added] = await asyncio.to_thread(
        node_ops, node_bullmq, connection, prefix, queue, [{"op": "add", "data": {"n": 1}}]
    )
    job_id = added["id"]
    processor = Processor.from_function(queue, refuses, ProcessorOptions(dead_letter_queue=dlq))
    report = await asyncio.wait_for(
        backend.run_worker(WorkerOptions(processors=[processor], burst=True)), 60
    )
    assert report.dead_lettered == 1
    [record] = await backend.dead_letters(dlq)
    assert record.job_id == job_id
    client = await backend.client()
    key = backend.key(queue, job_id)
    assert await client.hget(key, OUTCOME_FIELD) == "dead_lettered"

    await asyncio.to_thread(
        node_ops, node_bullmq, connection, prefix, queue, [{"op": "retry", "id": job_id}]
    )
    assert await backend.dead_letters(dlq) == []  # waiting again: not a live dead letter
    assert await backend.replay(dlq) == 0
    seen = await asyncio.to_thread(node_bullmq.run, "worker.cjs", connection, prefix, queue, "1")
    assert [job["id"] for job in seen] == [job_id]
    assert (await backend.get_job(queue, job_id)).state == JobState.COMPLETED  # type: ignore[union-attr]
    assert await backend.dead_letters(dlq) == []
    assert await client.hmget(key, OUTCOME_FIELD, ERROR_FIELD) == [None, None]
    assert await (await backend.queue(dlq)).getJobCounts("waiting") == {"waiting": 0}
