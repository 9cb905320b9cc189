"""Stopping the long-poll worker against moto: a second signal (the worker's task cancelled)
still gives running jobs back at once, and a stop during a batch's settle re-sends nothing that
was settled."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from pikku_queue import BatchOptions, JobContext
from pikku_queue.adapters.sqs.backend import SQSQueueAdapter
from pikku_queue.adapters.sqs.messages import InboundMessage
from pikku_queue.backend import WorkerOptions
from pikku_queue.options import ProcessorOptions
from pikku_queue.processor import Processor
from pikku_queue.records import EnqueueRequest
from pydantic import BaseModel
from sqs_support import Queues

pytestmark = pytest.mark.sqs


class Job(BaseModel):
    n: int


def processor(name: str, func: Any, **options: Any) -> Processor:
    return Processor.from_function(name, func, ProcessorOptions.model_validate(options))


@pytest.mark.parametrize("name", ["cut", "cut.fifo"])
async def test_a_second_signal_skips_the_grace_period_but_gives_running_jobs_back(
    queues: Queues, backend: SQSQueueAdapter, name: str
) -> None:
    # The lease (30 s by default) is the message's visibility timeout: a message abandoned by
    # the cancelled worker would stay invisible that long, so the receive below would get none.
    queues.create(name)
    await backend.enqueue(EnqueueRequest(queue=name, payload={"n": 1}))
    started = asyncio.Event()
    cancelled: list[int] = []

    async def blocks(ctx: JobContext, data: Job) -> int:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(data.n)
            raise
        return 0

    options = WorkerOptions(processors=[processor(name, blocks)], grace_period_s=3600)
    worker = asyncio.create_task(backend.run_worker(options))
    await asyncio.wait_for(started.wait(), 10)
    options.stop.set()  # first signal: the job gets an hour
    await asyncio.sleep(0.2)  # the worker is in its grace period now (or about to be)
    worker.cancel()  # second signal
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(worker, 60)

    [message] = queues.receive(name)  # visible at once
    assert cancelled == [1]  # the running job was cancelled, not left running
    assert json.loads(message["Body"]) == {"n": 1}
    if not name.endswith(".fifo"):
        # standard queues: re-sent with the interrupted attempt not counted, as on a first stop
        assert InboundMessage.from_received(message).attempt == 1
    assert queues.depth(name) == {"visible": 0, "in_flight": 1, "delayed": 0}


class _StopOnDrop(logging.Handler):
    """Sets the worker's stop flag when a job is dropped: in the middle of a batch's settle."""

    def __init__(self, stop: asyncio.Event) -> None:
        super().__init__()
        self.stop = stop

    def emit(self, record: logging.LogRecord) -> None:
        if "has no dead-letter queue" in record.getMessage():
            self.stop.set()


async def test_a_stop_during_a_batch_settle_re_sends_nothing_that_was_settled(
    queues: Queues, backend: SQSQueueAdapter
) -> None:
    # A standard queue gives messages back by re-sending copies. The first item is invalid and
    # the queue has no dead-letter queue, so settling it drops it with a log line, which stops
    # the worker (grace 0) while the other items' settles are still to come. A stop that gave
    # the whole batch back would re-send copies of the items it completed (and of the one it
    # dropped), and each would run again.
    queues.create("bulk")
    await backend.enqueue(EnqueueRequest(queue="bulk", payload={"n": "not a number"}))
    for n in range(4):
        await backend.enqueue(EnqueueRequest(queue="bulk", payload={"n": n}))
    calls: list[list[int]] = []

    async def total(ctx: JobContext, items: list[Job]) -> list[int]:
        calls.append([item.n for item in items])
        return [item.n for item in items]

    proc = processor("bulk", total, batch=BatchOptions(size=5, timeout=2_000))
    options = WorkerOptions(processors=[proc], grace_period_s=0)
    handler = _StopOnDrop(options.stop)
    sqs_logger = logging.getLogger("pikku_queue.sqs")
    sqs_logger.addHandler(handler)
    try:
        report = await asyncio.wait_for(backend.run_worker(options), 60)
    finally:
        sqs_logger.removeHandler(handler)

    assert options.stop.is_set()  # stopped by the drop, not by anything else
    assert calls == [[0, 1, 2, 3]]
    assert queues.depth("bulk") == {"visible": 0, "in_flight": 0, "delayed": 0}
    assert (report.completed, report.failed) == (4, 1)
