"""SQS's batch calls against moto: a bulk enqueue in SendMessageBatch calls of ten, failures
reported for their own job, and a worker that settles in DeleteMessageBatch /
ChangeMessageVisibilityBatch calls (the calls are seen by a botocore hook on the adapter's
own client)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pikku_queue import JobContext
from pikku_queue.adapters.sqs.backend import SQSQueueAdapter
from pikku_queue.adapters.sqs.batch import chunks, send_all
from pikku_queue.backend import WorkerOptions
from pikku_queue.errors import PartialEnqueueError
from pikku_queue.options import ProcessorOptions
from pikku_queue.processor import Processor
from pikku_queue.records import EnqueueRequest
from sqs_support import REGION, Queues

pytestmark = pytest.mark.sqs


class Calls:
    """Every SQS operation the client is asked for, with its parameters."""

    def __init__(self, backend: SQSQueueAdapter) -> None:
        self.made: list[tuple[str, dict[str, Any]]] = []
        backend.api.client.meta.events.register("before-parameter-build.sqs", self._seen)

    def _seen(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.made.append((model.name, params))

    def named(self, operation: str) -> list[dict[str, Any]]:
        return [params for name, params in self.made if name == operation]


def test_chunks_keep_to_ten_entries_and_one_mib() -> None:
    assert chunks([1] * 25) == [list(range(10)), list(range(10, 20)), list(range(20, 25))]
    assert chunks([600_000, 600_000, 10]) == [[0], [1, 2]]


async def test_enqueue_many_sends_batches_of_ten(queues: Queues, backend: SQSQueueAdapter) -> None:
    queues.create("bulk")
    calls = Calls(backend)

    ids = await backend.enqueue_many(
        [EnqueueRequest(queue="bulk", payload={"n": n}) for n in range(25)]
    )

    sends = calls.named("SendMessageBatch")
    assert [len(call["Entries"]) for call in sends] == [10, 10, 5]
    assert calls.named("SendMessage") == []
    bodies = {}
    for _ in range(5):
        for message in queues.receive("bulk", visibility=60):
            bodies[message["MessageAttributes"]["pikku_job_id"]["StringValue"]] = message["Body"]
    assert bodies == {job_id: json.dumps({"n": n}).replace(" ", "") for n, job_id in enumerate(ids)}


async def test_a_refused_entry_is_reported_for_its_own_job(
    queues: Queues, backend: SQSQueueAdapter
) -> None:
    url = queues.create("partial")
    entries: list[dict[str, Any]] = [{"MessageBody": str(n), "DelaySeconds": 0} for n in range(12)]
    entries[3]["DelaySeconds"] = 901  # SQS refuses this one entry (SenderFault), not the call

    failures = await send_all(backend.api, url, entries, [1] * 12)

    assert list(failures) == [3]
    assert "DelaySeconds" in failures[3]
    assert queues.depth("partial")["visible"] == 11


async def test_a_failed_call_reports_its_jobs_and_keeps_the_others(
    queues: Queues, url_prefix: str
) -> None:
    queues.create("present")
    backend = SQSQueueAdapter(
        url_prefix,
        region=REGION,
        endpoint_url=queues.endpoint,
        queue_urls={"absent": f"{url_prefix}absent"},  # no such queue: its call fails whole
    )
    try:
        requests = [EnqueueRequest(queue="present", payload={"n": n}) for n in range(3)]
        requests.insert(1, EnqueueRequest(queue="absent", payload={"n": 99}))
        with pytest.raises(PartialEnqueueError) as raised:
            await backend.enqueue_many(requests)
    finally:
        await backend.close()

    error = raised.value
    assert list(error.failures) == [1]
    assert [job_id is None for job_id in error.job_ids] == [False, True, False, False]
    assert "1 of 4 jobs were not enqueued" in str(error)
    assert queues.depth("present")["visible"] == 3


async def fails_first(ctx: JobContext, data: dict[str, Any]) -> None:
    if ctx.attempt == 1:
        raise RuntimeError("first attempt fails")


async def test_the_worker_settles_in_batch_calls(queues: Queues, backend: SQSQueueAdapter) -> None:
    queues.create("settle")
    await backend.enqueue_many([EnqueueRequest(queue="settle", payload={}) for _ in range(20)])
    calls = Calls(backend)
    options = ProcessorOptions.model_validate({"retry_options": {"attempts": 2, "delay": 0}})

    report = await backend.run_worker(
        WorkerOptions(
            processors=[Processor.from_function("settle", fails_first, options)],
            concurrency=10,
            burst=True,
        )
    )

    assert (report.completed, report.retried) == (20, 20)
    assert calls.named("DeleteMessage") == calls.named("ChangeMessageVisibility") == []
    deleted = [e["ReceiptHandle"] for c in calls.named("DeleteMessageBatch") for e in c["Entries"]]
    hidden = [
        e["VisibilityTimeout"]
        for c in calls.named("ChangeMessageVisibilityBatch")
        for e in c["Entries"]
    ]
    assert len(deleted) == len(set(deleted)) == 20
    assert hidden == [0] * 20  # each retry made visible again at once (no backoff)
    assert all(len(c["Entries"]) <= 10 for name, c in calls.made if name.endswith("Batch"))
    assert queues.depth("settle") == {"visible": 0, "in_flight": 0, "delayed": 0}
