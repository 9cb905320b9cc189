"""SQS holds a delay of at most 900 s (DelaySeconds): a longer one, up to and past the shared
maximum (`MAX_DELAY_MS`), is the same `InvalidEnqueueOptionsError` as on every other backend
(`tests/runtime/test_delay_limit.py`), on every path, and nothing is sent."""

from __future__ import annotations

import pytest
from pikku_queue.adapters.sqs.backend import SQSQueueAdapter
from pikku_queue.client import TypedQueue, known_queues, queue_job
from pikku_queue.errors import InvalidEnqueueOptionsError
from pikku_queue.options import MAX_DELAY_MS
from pikku_queue.records import EnqueueRequest
from pydantic import TypeAdapter
from sqs_support import Queues

pytestmark = pytest.mark.sqs


@pytest.mark.parametrize("delay", [900_001, MAX_DELAY_MS, MAX_DELAY_MS + 1, 2**63, 2**64])
async def test_a_delay_sqs_cannot_hold_is_an_options_error(
    queues: Queues, backend: SQSQueueAdapter, delay: int
) -> None:
    queues.create("late")
    typed: TypedQueue[int, int] = TypedQueue("late", TypeAdapter(int), TypeAdapter(int))
    try:
        with pytest.raises(InvalidEnqueueOptionsError, match="delay"):
            await typed.enqueue(1, delay=delay, backend=backend)
        with pytest.raises(InvalidEnqueueOptionsError, match="delay"):
            await typed.enqueue_many([1, 2], delay=delay, backend=backend)
        with pytest.raises(InvalidEnqueueOptionsError, match="delay"):
            await queue_job("late", 1, delay=delay, backend=backend)
        with pytest.raises(InvalidEnqueueOptionsError, match=r"at most 900 s|from 0 to"):
            await backend.enqueue(EnqueueRequest(queue="late", payload=1, delay_ms=delay))
    finally:
        known_queues.pop("late", None)
    counts = await backend.counts("late")
    assert counts.waiting == counts.delayed == 0
    await typed.enqueue(1, delay=900_000, backend=backend)  # the longest SQS holds
