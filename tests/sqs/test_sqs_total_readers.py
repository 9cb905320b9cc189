"""SQS on moto, the cases the stored-field scenario cannot name: a dead-letter record too large
for any SQS message ends its job failed (never redelivered), and a burst long-poll worker
whose dead-letter sends always fail holds the job after `burst.MAX_DELIVERIES` receives and
ends, saying which job it left. (Every attribute and the body, property-based:
`test_sqs_conformance.py`.)"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pikku_queue import JobContext
from pikku_queue.adapters.sqs.backend import SQSQueueAdapter
from pikku_queue.adapters.sqs.config import MAX_MESSAGE_BYTES
from pikku_queue.backend import WorkerOptions
from pikku_queue.burst import MAX_DELIVERIES
from pikku_queue.errors import BackendError
from pikku_queue.options import ProcessorOptions
from pikku_queue.processor import Processor
from pikku_queue.records import EnqueueRequest
from pydantic import BaseModel
from sqs_support import Queues

pytestmark = pytest.mark.sqs


class Job(BaseModel):
    n: int


seen: list[int] = []


async def record(ctx: JobContext, data: Job) -> int:
    seen.append(data.n)
    return data.n


def processor(name: str, **options: Any) -> Processor:
    return Processor.from_function(name, record, ProcessorOptions.model_validate(options))


async def test_a_record_too_large_for_any_message_ends_the_job_failed(
    queues: Queues, backend: SQSQueueAdapter
) -> None:
    """A body just under the 1 MiB limit that is not JSON: its record (the body kept as text,
    plus the envelope) fits no message in any form, so the job is dropped as failed and
    logged, instead of being kept and received again for ever."""
    queues.create("big")
    queues.create("big-dlq")
    body = "not json " + "x" * (MAX_MESSAGE_BYTES - 100)
    queues.sqs.send_message(QueueUrl=queues.url("big"), MessageBody=body)
    await backend.enqueue(EnqueueRequest(queue="big", payload={"n": 1}))
    seen.clear()
    options = WorkerOptions(
        processors=[processor("big", dead_letter_queue="big-dlq")], burst=True, lease_ms=2_000
    )
    report = await asyncio.wait_for(backend.run_worker(options), 60)
    assert (report.completed, report.failed, report.dead_lettered, report.undone) == (1, 1, 0, [])
    assert seen == [1]
    assert queues.depth("big") == {"visible": 0, "in_flight": 0, "delayed": 0}


async def test_a_job_whose_dead_letter_send_always_fails_is_held_and_reported_undone(
    queues: Queues, backend: SQSQueueAdapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    queues.create("keep")
    queues.create("keep-dlq")
    send = backend.api.send

    async def dlq_down(kwargs: dict[str, Any]) -> Any:
        if kwargs["QueueUrl"].endswith("keep-dlq"):
            raise BackendError("SendMessage: the DLQ is unreachable")
        return await send(kwargs)

    monkeypatch.setattr(backend.api, "send", dlq_down)
    job = await backend.enqueue(EnqueueRequest(queue="keep", payload={"n": "not a number"}))
    await backend.enqueue(EnqueueRequest(queue="keep", payload={"n": 2}))
    seen.clear()
    options = WorkerOptions(
        processors=[processor("keep", dead_letter_queue="keep-dlq")], burst=True, lease_ms=1_000
    )
    report = await asyncio.wait_for(backend.run_worker(options), 60)
    assert (report.completed, seen) == (1, [2])
    assert report.undone == [
        f"keep job {job}: handed to this worker {MAX_DELIVERIES} times and no verdict could be"
        " stored"
    ]
