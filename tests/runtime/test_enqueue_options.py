"""The one per-job enqueue options model (`EnqueueOptions`): the job-id rule, the priority
range and strict types (a bool or a numeric string is not an integer), refused the same way by
every enqueue path before anything is sent."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pikku_queue.adapters.memory.backend import MemoryBackend
from pikku_queue.client import TypedQueue, enqueue_options, known_queues, queue_job
from pikku_queue.declarations import queue_processor
from pikku_queue.errors import InvalidEnqueueOptionsError
from pikku_queue.options import (
    MAX_JOB_ID_LENGTH,
    MAX_PRIORITY,
    EnqueueOptions,
    ProcessorOptions,
    RetryOptions,
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


#: Values pydantic's lax mode would convert, each refused by the strict options model: a bool
#: is not an integer, "5" is not 5, 5.0 is not a count of milliseconds.
NOT_INTEGERS: list[object] = [True, False, "5", "5000", 5.0, b"5"]


@pytest.mark.parametrize("value", NOT_INTEGERS, ids=repr)
@pytest.mark.parametrize("option", ["priority", "delay"])
async def test_every_enqueue_path_refuses_what_only_looks_like_an_integer(
    backend: MemoryBackend, typed: TypedQueue[int, int], option: str, value: object
) -> None:
    given: dict[str, Any] = {option: value}
    expected = f"{option}: Input should be a valid integer, got {type(value).__name__}"
    with pytest.raises(InvalidEnqueueOptionsError, match=re.escape(expected)):
        await typed.enqueue(1, backend=backend, **given)
    with pytest.raises(InvalidEnqueueOptionsError, match=re.escape(expected)):
        await typed.enqueue_many([1, 2], backend=backend, **given)
    with pytest.raises(InvalidEnqueueOptionsError, match=re.escape(expected)):
        await queue_job(typed.name, 1, backend=backend, **given)
    with pytest.raises(InvalidEnqueueOptionsError, match=re.escape(expected)):
        enqueue_options(**given)
    counts = await backend.counts(typed.name)
    assert counts.waiting == counts.delayed == 0


@pytest.mark.parametrize(
    ("repeat", "field"),
    [
        ({"every": True}, "every"),
        ({"every": "60000"}, "every"),
        ({"cron": "0 3 * * *", "limit": True}, "limit"),
        ({"cron": b"0 3 * * *"}, "cron"),
    ],
    ids=repr,
)
async def test_a_schedule_given_as_a_mapping_is_strict_too(
    backend: MemoryBackend, typed: TypedQueue[int, int], repeat: dict[str, Any], field: str
) -> None:
    with pytest.raises(
        InvalidEnqueueOptionsError, match=f"repeat.{field}: Input should be a valid"
    ):
        await typed.enqueue(1, repeat=repeat, backend=backend)


def test_a_job_id_is_text_not_bytes() -> None:
    with pytest.raises(InvalidEnqueueOptionsError, match="job_id: Input should be a valid string"):
        enqueue_options(job_id=b"order-1")  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [True, "3", 3.0])
def test_retry_attempts_are_an_integer_wherever_they_are_declared(value: object) -> None:
    with pytest.raises(ValidationError, match="attempts"):
        RetryOptions(attempts=value)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="attempts"):
        queue_processor("strict-attempts", retry_options={"attempts": value})
    with pytest.raises(ValidationError, match="concurrency"):
        ProcessorOptions(concurrency=value)  # type: ignore[arg-type]


def test_numbers_that_are_numbers_still_pass() -> None:
    retry = RetryOptions(attempts=3, factor=2, jitter=1)  # an int is a float's kind of number
    assert (retry.factor, retry.jitter) == (2.0, 1.0)
    assert ProcessorOptions.model_validate({"events": ["completed"]}).events == ("completed",)
    assert enqueue_options(delay=0, priority=1, repeat={"every": 1000}).repeat is not None


def test_enqueue_options_takes_every_field_of_the_model() -> None:
    """`enqueue_options` returns a shared default when no option is given: a field added to
    `EnqueueOptions` but not to its parameters (and to that test) would be dropped silently."""
    import inspect

    from pikku_queue.client import enqueue_options
    from pikku_queue.options import EnqueueOptions

    assert set(inspect.signature(enqueue_options).parameters) == set(EnqueueOptions.model_fields)
    for name in EnqueueOptions.model_fields:
        given = {"delay": 5, "priority": 3, "job_id": "x", "repeat": {"every": 60_000},
                 "dedupe": {"key": "k", "ttl_ms": 1000}}[name]  # fmt: skip
        assert getattr(enqueue_options(**{name: given}), name) is not None
