"""The long-poll worker against moto: draining, retries through visibility, dead letters,
lease extension for long jobs, batches, and giving jobs back on stop."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from pikku_queue import BatchOptions, JobContext
from pikku_queue.adapters.sqs.backend import SQSQueueAdapter
from pikku_queue.adapters.sqs.messages import InboundMessage
from pikku_queue.backend import WorkerOptions
from pikku_queue.errors import NonRetryableError
from pikku_queue.options import ProcessorOptions
from pikku_queue.processor import Processor
from pikku_queue.records import EnqueueRequest
from pydantic import BaseModel
from sqs_support import Queues

pytestmark = pytest.mark.sqs


class Job(BaseModel):
    n: int


seen: list[tuple[int, int]] = []


async def record(ctx: JobContext, data: Job) -> int:
    seen.append((data.n, ctx.attempt))
    return data.n * 2


async def fails_first(ctx: JobContext, data: Job) -> int:
    seen.append((data.n, ctx.attempt))
    if ctx.attempt == 1 or data.n < 0:
        raise RuntimeError(f"attempt {ctx.attempt} of {data.n} failed")
    return data.n


def processor(name: str, func: Any, **options: Any) -> Processor:
    return Processor.from_function(name, func, ProcessorOptions.model_validate(options))


async def fill(backend: SQSQueueAdapter, queue: str, *numbers: int) -> None:
    for n in numbers:
        await backend.enqueue(EnqueueRequest(queue=queue, payload={"n": n}))


async def test_worker_drains_a_queue(queues: Queues, backend: SQSQueueAdapter) -> None:
    queues.create("drain")
    await fill(backend, "drain", *range(25))
    seen.clear()

    report = await backend.run_worker(
        WorkerOptions(processors=[processor("drain", record, concurrency=5)], burst=True)
    )

    assert report.completed == 25
    assert sorted(n for n, _ in seen) == list(range(25))
    counts = await backend.counts("drain")
    assert (counts.waiting, counts.active, counts.delayed, counts.completed) == (0, 0, 0, 25)
    assert len(await backend.finished_since("drain", 0)) == 25


async def test_worker_retries_through_visibility_then_dead_letters(
    queues: Queues, backend: SQSQueueAdapter
) -> None:
    queues.create("flaky-dlq")
    queues.create("flaky")
    await fill(backend, "flaky", 1, -1)
    seen.clear()
    proc = processor(
        "flaky",
        fails_first,
        retry_options={"attempts": 2, "delay": 1_000},
        dead_letter_queue="flaky-dlq",
    )

    report = await backend.run_worker(WorkerOptions(processors=[proc], burst=True))

    assert (report.completed, report.retried, report.dead_lettered) == (1, 2, 1)
    assert sorted(seen) == [(-1, 1), (-1, 2), (1, 1), (1, 2)]
    [record_] = await backend.dead_letters("flaky-dlq")
    assert (record_.job_id != "", record_.payload, record_.attempts) == (True, {"n": -1}, 2)
    assert record_.reason == "attempts_exhausted"


async def test_worker_extends_the_lease_of_a_long_job(
    queues: Queues, backend: SQSQueueAdapter
) -> None:
    queues.create("long")
    await fill(backend, "long", 1)
    visible_during_job: list[int] = []

    async def long_job(ctx: JobContext, data: Job) -> int:
        await asyncio.sleep(4.5)  # 2.25 leases of 2 s
        depth = await asyncio.to_thread(queues.depth, "long")
        visible_during_job.append(depth["visible"])
        seen.append((data.n, ctx.attempt))
        return 0

    seen.clear()
    report = await backend.run_worker(
        WorkerOptions(processors=[processor("long", long_job)], burst=True, lease_ms=2_000)
    )

    assert report.completed == 1
    assert visible_during_job == [0]  # never handed out again while it ran
    assert seen == [(1, 1)]


async def test_batch_processor_receives_lists(queues: Queues, backend: SQSQueueAdapter) -> None:
    queues.create("batched")
    await fill(backend, "batched", *range(7))
    sizes: list[int] = []

    async def total(ctx: JobContext, items: list[Job]) -> list[int]:
        sizes.append(len(items))
        return [item.n for item in items]

    proc = processor("batched", total, batch=BatchOptions(size=5, timeout=500))
    report = await backend.run_worker(WorkerOptions(processors=[proc], burst=True))

    assert report.completed == 7
    assert sum(sizes) == 7
    assert max(sizes) <= 5
    assert len(sizes) < 7  # gathered, not one call per job


async def test_stop_gives_running_jobs_back_with_their_attempts(
    queues: Queues, backend: SQSQueueAdapter
) -> None:
    queues.create("held")
    await fill(backend, "held", 1)
    queues.receive("held", visibility=0)  # an earlier consumer died: this is now attempt 2
    started = asyncio.Event()
    attempts: list[int] = []

    async def blocks(ctx: JobContext, data: Job) -> int:
        attempts.append(ctx.attempt)
        started.set()
        await asyncio.sleep(3600)
        return 0

    options = WorkerOptions(processors=[processor("held", blocks)], grace_period_s=0.1)
    worker = asyncio.create_task(backend.run_worker(options))
    await asyncio.wait_for(started.wait(), 10)
    options.stop.set()
    report = await asyncio.wait_for(worker, 10)

    assert report.completed == 0
    [message] = queues.receive("held")
    returned = InboundMessage.from_received(message)
    assert json.loads(message["Body"]) == {"n": 1}
    # the copy carries the attempt that was spent before the one interrupted by the stop
    assert (returned.attempts_made, returned.attempt) == (1, 2)
    assert attempts == [2]


async def refuses(data: Job) -> int:
    raise NonRetryableError("no")


async def test_fifo_replay_and_dead_letter_records_get_deduplication_ids_of_their_own(
    queues: Queues, backend: SQSQueueAdapter
) -> None:
    # SQS silently drops a FIFO message whose MessageDeduplicationId it saw in the last
    # 5 minutes, even one deleted since, while reporting success. A replay sent under the job's
    # id (the one its enqueue used) would vanish with its record already deleted: the job lost.
    # moto only compares with messages still queued, so the ids themselves are checked.
    queues.create("seq.fifo")
    queues.create("seq-dlq.fifo")
    await backend.enqueue(EnqueueRequest(queue="seq.fifo", payload={"n": 1}, job_id="order-1"))
    report = await asyncio.wait_for(
        backend.run_worker(
            WorkerOptions(
                processors=[processor("seq.fifo", refuses, dead_letter_queue="seq-dlq.fifo")],
                burst=True,
                lease_ms=2_000,
            )
        ),
        60,
    )
    assert report.dead_lettered == 1
    [dead] = queues.receive("seq-dlq.fifo", visibility=0)
    dead_dedup = dead["Attributes"]["MessageDeduplicationId"]
    assert dead_dedup != "order-1"

    assert await backend.replay("seq-dlq.fifo") == 1
    [back] = queues.receive("seq.fifo", wait=1)
    assert json.loads(back["Body"]) == {"n": 1}
    assert InboundMessage.from_received(back).job_id == "order-1"
    assert back["Attributes"]["MessageDeduplicationId"] not in ("order-1", dead_dedup)


async def test_fifo_messages_of_one_group_complete_in_order_across_a_retry(
    queues: Queues, backend: SQSQueueAdapter
) -> None:
    queues.create("ord.fifo")
    completed: list[int] = []

    async def first_one_fails_once(ctx: JobContext, data: Job) -> int:
        if data.n == 1 and ctx.attempt == 1:
            raise RuntimeError("not yet")
        completed.append(data.n)
        return data.n

    for n in (1, 2, 3):  # one message group (the queue's name): SQS hands them out together
        await backend.enqueue(EnqueueRequest(queue="ord.fifo", payload={"n": n}, job_id=f"j{n}"))
    options = WorkerOptions(
        processors=[
            processor(
                "ord.fifo", first_one_fails_once, concurrency=3, retry_options={"attempts": 3}
            )
        ],
        burst=True,
        lease_ms=5_000,
    )
    report = await asyncio.wait_for(backend.run_worker(options), 60)
    assert completed == [1, 2, 3]  # 2 and 3 waited for 1's retry
    assert (report.completed, report.retried) == (3, 1)


async def test_fifo_batch_processor_completes_a_group_in_order_across_a_retry(
    queues: Queues, backend: SQSQueueAdapter
) -> None:
    queues.create("bat.fifo")
    calls: list[list[int]] = []

    async def first_fails_once(ctx: JobContext, items: list[Job]) -> list[int]:
        calls.append([item.n for item in items])
        if len(calls) == 1:
            ctx.fail_item(0, "not yet")
        return [item.n for item in items]

    for n in (1, 2, 3):  # one message group (the queue's name)
        await backend.enqueue(EnqueueRequest(queue="bat.fifo", payload={"n": n}, job_id=f"j{n}"))
    proc = processor(
        "bat.fifo",
        first_fails_once,
        batch=BatchOptions(size=3, timeout=1_000),
        retry_options={"attempts": 3},
    )
    options = WorkerOptions(processors=[proc], burst=True, lease_ms=5_000)
    report = await asyncio.wait_for(backend.run_worker(options), 60)
    assert calls[0] == [1, 2, 3]
    # 2 and 3 succeeded in the first call but were given back, not deleted ahead of 1: they
    # run again after 1's retry, in order
    assert [n for call in calls[1:] for n in call] == [1, 2, 3]
    assert (report.completed, report.retried) == (3, 1)
