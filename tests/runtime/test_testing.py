"""`pikku_queue.testing`: the real engine on a virtual clock."""

from __future__ import annotations

import pytest
from pikku_queue import BatchOptions, JobContext, NonRetryableError, RetryOptions, queue_processor
from pikku_queue.adapters.memory.backend import MemoryBackend
from pikku_queue.backend import WorkerOptions
from pikku_queue.clock import VirtualClock
from pikku_queue.processor import Processor
from pikku_queue.records import EnqueueRequest, JobState
from pikku_queue.testing import (
    memory_backend,  # noqa: F401  (fixtures, as `pytest_plugins = ["pikku_queue.testing"]` gives)
    run_queue_processor,
    run_queue_processor_async,
    virtual_clock,  # noqa: F401
)
from pydantic import BaseModel


class Email(BaseModel):
    to: str


class Sent(BaseModel):
    message_id: str


ATTEMPTS: list[int] = []


@queue_processor(
    "email-testing",
    retry_options=RetryOptions(attempts=3, backoff="exponential", delay=60_000),
    dead_letter_queue="email-testing-dlq",
)
async def flaky_email(ctx: JobContext, data: Email) -> Sent:
    ATTEMPTS.append(ctx.attempt)
    await ctx.progress.update(processed=ctx.attempt, total=3)
    if ctx.attempt < 3:
        raise RuntimeError("smtp down")
    return Sent(message_id=f"{data.to}-{ctx.attempt}")


@queue_processor("always-fails", retry_options={"attempts": 4}, dead_letter_queue="af-dlq")
async def always_fails(data: Email) -> Sent:
    raise RuntimeError("nope")


def test_retries_with_minute_backoffs_take_no_real_time() -> None:
    ATTEMPTS.clear()
    run = run_queue_processor(flaky_email, Email(to="a@b.c"))
    assert run.status == JobState.COMPLETED
    assert run.attempts == 3
    assert ATTEMPTS == [1, 2, 3]
    assert run.output == Sent(message_id="a@b.c-3")
    assert run.progress == {"processed": 3, "total": 3, "percentage": 100.0}
    assert not run.dead_lettered
    assert [e.name for e in run.events].count("retrying") == 2


def test_expect_failure_reports_the_dead_letter() -> None:
    run = run_queue_processor(always_fails, {"to": "x"}, expect_failure=True)
    assert run.status == JobState.DEAD_LETTERED
    assert run.dead_lettered
    assert run.attempts == 4
    assert run.error is not None and run.error.message == "nope"
    assert run.dead_letter is not None and run.dead_letter.reason == "attempts_exhausted"


def test_max_retries_overrides_the_declaration() -> None:
    run = run_queue_processor(always_fails, {"to": "x"}, expect_failure=True, max_retries=0)
    assert run.attempts == 1


def test_unexpected_outcomes_raise_assertion_errors() -> None:
    with pytest.raises(AssertionError, match="ended dead_lettered after 4 attempt"):
        run_queue_processor(always_fails, {"to": "x"})
    with pytest.raises(AssertionError, match="expected the job to fail"):
        run_queue_processor(flaky_email, {"to": "y"}, expect_failure=True)


def test_invalid_data_dead_letters_like_in_production() -> None:
    run = run_queue_processor(always_fails, {"to": 5, "extra": []}, expect_failure=True)
    assert run.attempts == 1
    assert run.dead_letter is not None and run.dead_letter.reason == "invalid_payload"


def test_plain_functions_and_services() -> None:
    def lookup(ctx: JobContext, key: str) -> str:
        if key == "bad":
            raise NonRetryableError("bad key")
        return str(ctx.services[key])

    assert run_queue_processor(lookup, "a", services={"a": 1}).output == "1"
    failed = run_queue_processor(lookup, "bad", services={}, expect_failure=True)
    assert failed.status == JobState.FAILED  # no dead-letter queue declared
    assert not failed.dead_lettered


async def test_batch_processor_gets_the_list() -> None:
    @queue_processor("batch-testing", batch=BatchOptions(size=10, timeout=0))
    async def squares(ctx: JobContext, data: list[int]) -> list[int]:
        return [n * n for n in data]

    run = await run_queue_processor_async(squares, [1, 2, 3])
    assert run.output == [1, 4, 9]
    assert len(run.job_ids) == 3


async def test_fixtures_give_a_virtual_clock_backend(
    memory_backend: MemoryBackend,  # noqa: F811
    virtual_clock: VirtualClock,  # noqa: F811
) -> None:
    async def echo(data: int) -> int:
        return data

    start = virtual_clock.now_ms()
    job = await memory_backend.enqueue(EnqueueRequest("echo", 1, delay_ms=3_600_000))
    processor = Processor.from_function("echo", echo)
    await memory_backend.run_worker(WorkerOptions(processors=[processor], burst=True))
    info = await memory_backend.get_job("echo", job)
    assert info is not None and info.state == JobState.COMPLETED
    assert virtual_clock.now_ms() - start >= 3_600_000  # the worker slept an hour, virtually
