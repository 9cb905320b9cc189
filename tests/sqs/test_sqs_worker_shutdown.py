"""Stopping the long-poll worker against moto: a second signal (the worker's task cancelled)
still gives running jobs back at once."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from pikku_queue import JobContext
from pikku_queue.adapters.sqs import SQSQueueAdapter
from pikku_queue.adapters.sqs_messages import InboundMessage
from pikku_queue.backend import EnqueueRequest, WorkerOptions
from pikku_queue.engine import Processor
from pikku_queue.options import ProcessorOptions
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
