"""What another program leaves in BullMQ's keys: jobs a dead worker held, stall counters that
are not integers. The worker recovers them, says how many, and every job still ends."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import pytest
from pikku_queue.adapters.redis.backend import RedisBackend
from pikku_queue.backend import WorkerOptions
from pikku_queue.outcomes import ErrorInfo
from pikku_queue.processor import Processor
from pikku_queue.records import DeadLetterRecord, EnqueueRequest

pytestmark = pytest.mark.redis

LEASE_MS = 1000


async def abandon(backend: RedisBackend, queue: str) -> str:
    """Take one job as a BullMQ worker does, then never renew nor finish it (a dead worker)."""
    bull = await backend.queue(queue)
    token = f"dead-worker-{uuid.uuid4().hex}:1"
    raw = await bull.backend.moveToActive(token, {"lockDuration": LEASE_MS})
    assert raw[0], "no job to abandon"
    return str(raw[1])


def doubler(queue: str, seen: list[int]) -> Processor:
    async def double(data: dict[str, Any]) -> dict[str, Any]:
        seen.append(data["n"])
        return {"n": data["n"] * 2}

    return Processor.from_function(queue, double)


async def test_recovered_stalled_jobs_are_counted_in_one_info_line(
    backend: RedisBackend, caplog: pytest.LogCaptureFixture
) -> None:
    queue = f"foreign-{uuid.uuid4().hex[:8]}"
    for n in range(3):
        await backend.enqueue(EnqueueRequest(queue=queue, payload={"n": n}))
    abandoned = [await abandon(backend, queue) for _ in range(2)]
    assert len(set(abandoned)) == 2
    seen: list[int] = []
    options = WorkerOptions(processors=[doubler(queue, seen)], burst=True, lease_ms=LEASE_MS)
    with caplog.at_level(logging.INFO, logger="pikku_queue.redis"):
        report = await asyncio.wait_for(backend.run_worker(options), 60)
    assert sorted(seen) == [0, 1, 2]
    assert (report.completed, report.stalled) == (3, 2)
    lines = [r.getMessage() for r in caplog.records if "stalled job(s)" in r.getMessage()]
    assert sum(int(line.split("recovered ")[1].split()[0]) for line in lines) == 2, lines
    assert all(r.levelno == logging.INFO for r in caplog.records if "recovered" in r.getMessage())


async def test_a_stall_counter_that_is_not_an_integer_does_not_break_the_stall_check(
    backend: RedisBackend, caplog: pytest.LogCaptureFixture
) -> None:
    """BullMQ's stalled-job script increments `stc`; on text it fails after taking the job off
    the active list, and every stalled job of the queue stays where it is. The worker resets
    the counter first: both abandoned jobs come back and run."""
    queue = f"foreign-{uuid.uuid4().hex[:8]}"
    for n in range(2):
        await backend.enqueue(EnqueueRequest(queue=queue, payload={"n": n}))
    first = await abandon(backend, queue)
    await abandon(backend, queue)
    client = await backend.client()
    await client.hset(backend.key(queue, first), "stc", "not a number")
    seen: list[int] = []
    options = WorkerOptions(processors=[doubler(queue, seen)], burst=True, lease_ms=LEASE_MS)
    with caplog.at_level(logging.WARNING, logger="pikku_queue.redis"):
        report = await asyncio.wait_for(backend.run_worker(options), 60)
    assert sorted(seen) == [0, 1]
    assert report.completed == 2
    assert any("'stc'" in r.getMessage() for r in caplog.records), caplog.text
    counts = await backend.counts(queue)
    assert counts.waiting + counts.active + counts.delayed == 0


async def test_a_dead_letter_record_the_strict_writer_refuses_is_still_stored(
    backend: RedisBackend,
) -> None:
    """The total writer: a payload JSON cannot hold (an infinity) is kept as text."""
    dlq = f"foreign-{uuid.uuid4().hex[:8]}-dlq"
    record = DeadLetterRecord(
        id="q-1-1",
        queue="q",
        job_id="1",
        payload={"x": float("inf")},
        attempts=1,
        reason="invalid_payload",
        error=ErrorInfo(type="ValueError", message="bad \udcff byte"),
        failed_at_ms=1,
    )
    assert await backend.add_dead_letter(dlq, record)
    [stored] = await backend.dead_letters(dlq)
    assert (stored.id, stored.payload_encoding) == ("q-1-1", "text")
    assert "Infinity" in str(stored.payload)
