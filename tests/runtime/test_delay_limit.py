"""One maximum delay (`MAX_DELAY_MS`, ten years) on every backend, and each backend's own
shorter limit where it has one: a delay beyond either is an `InvalidEnqueueOptionsError` on
every enqueue path, also for a request handed to the backend directly, and nothing is stored.
Before, `delay=2**63` was an `OverflowError` inside SQLite and `2**64` one inside the msgpack
of bullmq-py's script arguments. (SQS: `tests/sqs/test_sqs_delay_limit.py`.)"""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pikku_queue.adapters import connect
from pikku_queue.adapters.cloudflare.backend import CloudflareQueueAdapter
from pikku_queue.adapters.memory.backend import MemoryBackend
from pikku_queue.backend import Backend, Closable
from pikku_queue.client import TypedQueue, known_queues, queue_job
from pikku_queue.errors import InvalidEnqueueOptionsError
from pikku_queue.options import MAX_DELAY_MS, Repeat, RetryOptions
from pikku_queue.records import EnqueueRequest, JobState
from pydantic import TypeAdapter, ValidationError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cloudflare"))
from cf_double import Cloudflare

QUEUE = "delay-limit"
#: Past the maximum: one more, SQLite's and msgpack's limits, and far past them.
TOO_LONG = [MAX_DELAY_MS + 1, 2**63, 2**64, 10**30]


@pytest.fixture(
    params=["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis), "cloudflare"]
)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    opened: Backend
    if request.param == "memory":
        opened = MemoryBackend()
    elif request.param == "sqlite":
        opened = connect(f"sqlite:///{tmp_path}/queue.db")
    elif request.param == "redis":
        server = request.getfixturevalue("redis_server")
        opened = connect(f"{server.url}?prefix=t{uuid.uuid4().hex[:10]}")
    else:
        opened = CloudflareQueueAdapter(
            Cloudflare().env({QUEUE: "DELAY_LIMIT"}), {QUEUE: "DELAY_LIMIT"}
        )
    try:
        yield opened
    finally:
        if isinstance(opened, Closable):
            await opened.close()


@pytest.fixture
def typed() -> Iterator[TypedQueue[int, int]]:
    queue: TypedQueue[int, int] = TypedQueue(QUEUE, TypeAdapter(int), TypeAdapter(int))
    yield queue
    known_queues.pop(QUEUE, None)


async def _stored(backend: Backend) -> int:
    if isinstance(backend, CloudflareQueueAdapter):
        return len(backend.env.DELAY_LIMIT.sends)
    counts = await backend.counts(QUEUE)
    return counts.waiting + counts.delayed


@pytest.mark.parametrize("delay", TOO_LONG, ids=["max+1", "2**63", "2**64", "10**30"])
async def test_a_delay_past_the_maximum_is_refused_on_every_path(
    backend: Backend, typed: TypedQueue[int, int], delay: int
) -> None:
    with pytest.raises(InvalidEnqueueOptionsError, match="delay"):
        await typed.enqueue(1, delay=delay, backend=backend)
    with pytest.raises(InvalidEnqueueOptionsError, match="delay"):
        await typed.enqueue_many([1, 2], delay=delay, backend=backend)
    with pytest.raises(InvalidEnqueueOptionsError, match="delay"):
        await queue_job(QUEUE, 1, delay=delay, backend=backend)
    with pytest.raises(InvalidEnqueueOptionsError, match=f"from 0 to {MAX_DELAY_MS:,}"):
        await backend.enqueue(EnqueueRequest(queue=QUEUE, payload=1, delay_ms=delay))
    assert await _stored(backend) == 0


@pytest.mark.parametrize("delay", [-1, True])
def test_a_request_for_a_backend_holds_a_whole_non_negative_delay(delay: Any) -> None:
    with pytest.raises(InvalidEnqueueOptionsError, match="delay"):
        EnqueueRequest(queue=QUEUE, payload=1, delay_ms=delay)


async def test_the_longest_delay_a_backend_holds_is_stored_and_one_more_is_refused(
    backend: Backend, typed: TypedQueue[int, int]
) -> None:
    limit = backend.capabilities.max_delay_ms or MAX_DELAY_MS
    handle = await typed.enqueue(1, delay=limit, backend=backend)
    many = await typed.enqueue_many([2, 3], delay=limit, backend=backend)
    if backend.capabilities.supports("results"):  # a backend that can look a job up
        for job in [handle, *many]:
            assert await job.status() == JobState.DELAYED
    assert await _stored(backend) == 3
    with pytest.raises(InvalidEnqueueOptionsError, match=str(limit)):
        await typed.enqueue(1, delay=limit + 1, backend=backend)
    assert await _stored(backend) == 3


def test_a_schedule_interval_has_the_same_maximum() -> None:
    assert Repeat(every=MAX_DELAY_MS).every == MAX_DELAY_MS
    with pytest.raises(ValidationError, match="less than or equal to 315360000000"):
        Repeat(every=MAX_DELAY_MS + 1)


@pytest.mark.parametrize("attempt", [2, 200, 1_100, 9_999])
def test_a_backoff_over_thousands_of_attempts_is_capped_not_an_overflow(attempt: int) -> None:
    unbounded = RetryOptions(attempts=10_000, backoff="exponential", delay=1000, factor=100)
    assert 0 < unbounded.base_delay_ms(attempt) <= MAX_DELAY_MS
    bounded = unbounded.model_copy(update={"max_delay": 60_000})
    assert bounded.base_delay_ms(attempt) <= 60_000
    gentle = RetryOptions(attempts=10_000, backoff="exponential", delay=1000, factor=2)
    assert gentle.base_delay_ms(attempt) == min(1000 * 2 ** (attempt - 1), MAX_DELAY_MS)
