"""The one per-job enqueue options model (`EnqueueOptions`): the job-id rule and the priority
range, refused the same way by every enqueue path before anything is sent."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from pikku_queue.adapters.memory.backend import MemoryBackend
from pikku_queue.client import TypedQueue, known_queues, queue_job
from pikku_queue.errors import InvalidEnqueueOptionsError
from pikku_queue.options import (
    MAX_JOB_ID_LENGTH,
    MAX_PRIORITY,
    EnqueueOptions,
    ProcessorOptions,
    job_id_problem,
)
from pydantic import TypeAdapter, ValidationError

REFUSED_IDS = {
    "3": "cannot be an integer",
    "0042": "cannot be an integer",
    "-7": "cannot be an integer",
    "pikku:dead": "cannot contain ':'",
    "order 1": "ASCII letters, digits and punctuation",
    "ordre-é": "ASCII letters, digits and punctuation",
    "": "cannot be empty",
    "x" * (MAX_JOB_ID_LENGTH + 1): f"at most {MAX_JOB_ID_LENGTH} characters",
}
ACCEPTED_IDS = [
    "order-123",
    "3a",
    "1.5",
    "x" * MAX_JOB_ID_LENGTH,
    "!\"#$%&'()*+,-./;<=>?@[\\]^_`{|}~",
]


@pytest.fixture
async def backend() -> AsyncIterator[MemoryBackend]:
    backend = MemoryBackend()
    yield backend
    await backend.close()


@pytest.fixture
def typed() -> Iterator[TypedQueue[int, int]]:
    queue: TypedQueue[int, int] = TypedQueue("options-test", TypeAdapter(int), TypeAdapter(int))
    yield queue
    known_queues.pop(queue.name, None)


@pytest.mark.parametrize(("job_id", "why"), sorted(REFUSED_IDS.items()))
def test_the_model_refuses_ids_bullmq_or_sqs_would_refuse(job_id: str, why: str) -> None:
    problem = job_id_problem(job_id)
    assert problem is not None and why in problem
    with pytest.raises(ValidationError, match="job_id"):
        EnqueueOptions(job_id=job_id)


@pytest.mark.parametrize("job_id", ACCEPTED_IDS)
def test_the_model_accepts_prefixed_and_punctuated_ids(job_id: str) -> None:
    assert job_id_problem(job_id) is None
    assert EnqueueOptions(job_id=job_id).job_id == job_id


def test_repeat_takes_a_mapping() -> None:
    assert EnqueueOptions.model_validate({"repeat": {"cron": "0 3 * * *"}}).repeat is not None


async def test_typed_client_refuses_an_integer_id_with_a_hint_and_sends_nothing(
    backend: MemoryBackend, typed: TypedQueue[int, int]
) -> None:
    with pytest.raises(InvalidEnqueueOptionsError) as caught:
        await typed.enqueue(1, job_id="3", backend=backend)
    assert "job_id: a job_id cannot be an integer ('3')" in str(caught.value)
    assert "order-123" in str(caught.value)
    with pytest.raises(InvalidEnqueueOptionsError, match="cannot contain ':'"):
        typed.enqueue_sync(1, job_id="pikku:dead", backend=backend)
    counts = await backend.counts(typed.name)
    assert counts.waiting == 0


async def test_queue_job_refuses_the_same_ids(
    backend: MemoryBackend, typed: TypedQueue[int, int]
) -> None:
    with pytest.raises(InvalidEnqueueOptionsError, match="cannot be an integer"):
        await queue_job(typed.name, 1, job_id="5", backend=backend)
    # A queue this process does not know is refused on its options first, all the same.
    with pytest.raises(InvalidEnqueueOptionsError, match="cannot be an integer"):
        await queue_job("no-such-queue-here", 1, job_id="5", backend=backend)
    assert (await backend.counts(typed.name)).waiting == 0


@pytest.mark.parametrize("priority", [0, MAX_PRIORITY + 1, 3_000_000])
async def test_every_enqueue_path_keeps_priority_in_bullmq_range(
    backend: MemoryBackend, typed: TypedQueue[int, int], priority: int
) -> None:
    with pytest.raises(InvalidEnqueueOptionsError, match="priority"):
        await typed.enqueue(1, priority=priority, backend=backend)
    with pytest.raises(InvalidEnqueueOptionsError, match="priority"):
        await typed.enqueue_many([1, 2], priority=priority, backend=backend)
    with pytest.raises(InvalidEnqueueOptionsError, match="priority"):
        await queue_job(typed.name, 1, priority=priority, backend=backend)
    assert (await backend.counts(typed.name)).waiting == 0


async def test_the_range_ends_are_accepted(
    backend: MemoryBackend, typed: TypedQueue[int, int]
) -> None:
    await typed.enqueue(1, priority=1, backend=backend)
    await typed.enqueue_many([2, 3], priority=MAX_PRIORITY, backend=backend)
    assert (await backend.counts(typed.name)).waiting == 3


def test_declarations_use_the_same_range() -> None:
    assert ProcessorOptions(priority=MAX_PRIORITY).priority == MAX_PRIORITY
    with pytest.raises(ValidationError, match="less than or equal to 2097151"):
        ProcessorOptions(priority=MAX_PRIORITY + 1)


async def test_negative_delay_is_an_options_error(
    backend: MemoryBackend, typed: TypedQueue[int, int]
) -> None:
    with pytest.raises(InvalidEnqueueOptionsError, match="delay"):
        await typed.enqueue(1, delay=-1, backend=backend)
