"""The generic pull loop: leases held while jobs run, batch gathering, backend hiccups."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from pikku_queue.adapters.memory.backend import MemoryBackend
from pikku_queue.adapters.sqlite.backend import SqliteBackend
from pikku_queue.backend import WorkerOptions
from pikku_queue.context import JobContext
from pikku_queue.errors import BackendError
from pikku_queue.options import BatchOptions, ProcessorOptions
from pikku_queue.outcomes import Delivery
from pikku_queue.processor import Processor
from pikku_queue.pull import run_pull_worker
from pikku_queue.records import EnqueueRequest, JobState
from pydantic import BaseModel, field_validator


async def test_leases_are_extended_while_a_long_job_runs(tmp_path: Path) -> None:
    # Lease 1 s, job 2.5 s, and a second worker on the same file ready to take back any
    # expired lease: only lease extension (every third of a lease) keeps the job from running
    # twice. The lease leaves a loaded machine 2/3 s of slack for each extension.
    db = tmp_path / "q.db"
    first, second = SqliteBackend(db), SqliteBackend(db)
    await first.enqueue(EnqueueRequest("long", 1))
    runs: Counter[int] = Counter()

    async def long(data: int) -> int:
        runs[data] += 1
        await asyncio.sleep(2.5)
        return data

    processor = Processor.from_function("long", long)
    reports = await asyncio.gather(
        first.run_worker(WorkerOptions(processors=[processor], burst=True, lease_ms=1000)),
        second.run_worker(WorkerOptions(processors=[processor], burst=True, lease_ms=1000)),
    )
    assert runs == Counter({1: 1})
    assert sum(r.stalled for r in reports) == 0
    await first.close()
    await second.close()


async def test_batch_waits_for_its_timeout_to_fill_up(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path / "q.db")
    calls: list[list[int]] = []

    async def batch(ctx: JobContext, data: list[int]) -> list[int]:
        calls.append(data)
        return data

    # A window far longer than the test: the batch runs because it filled up, never by luck.
    options = ProcessorOptions(batch=BatchOptions(size=2, timeout=600_000))
    worker = WorkerOptions(processors=[Processor.from_function("b", batch, options)])
    running = asyncio.create_task(backend.run_worker(worker))
    await backend.enqueue(EnqueueRequest("b", 1))
    while (await backend.counts("b")).active < 1:  # leased alone: its gathering window is open
        await asyncio.sleep(0.01)
    await backend.enqueue(EnqueueRequest("b", 2))
    while (await backend.counts("b")).completed < 2:
        await asyncio.sleep(0.01)
    worker.stop.set()
    await running
    assert calls == [[1, 2]]
    await backend.close()


class FlakySource(SqliteBackend):
    """A real SQLite store whose first leases fail, like a briefly locked or lost backend."""

    failures = 2

    async def reserve(
        self,
        queue: str,
        limit: int,
        lease_ms: int,
        worker_id: str,
        max_active: int | None = None,
    ) -> list[Delivery]:
        if self.failures:
            self.failures -= 1
            raise BackendError("database is locked")
        return await super().reserve(queue, limit, lease_ms, worker_id, max_active)


async def test_worker_survives_backend_errors(tmp_path: Path) -> None:
    backend = FlakySource(tmp_path / "q.db")
    job = await backend.enqueue(EnqueueRequest("q", 5))

    async def echo(data: int) -> int:
        return data

    options = WorkerOptions(processors=[Processor.from_function("q", echo)], burst=True)
    report = await asyncio.wait_for(run_pull_worker(backend, backend, options), 30)
    assert report.completed == 1
    assert backend.failures == 0
    info = await backend.get_job("q", job)
    assert info is not None and info.state == JobState.COMPLETED
    await backend.close()


async def test_worker_concurrency_overrides_the_processor(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path / "q.db")
    await backend.enqueue_many([EnqueueRequest("c", n) for n in range(6)])
    active = peak = 0

    async def slow(data: int) -> int:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.05)
        active -= 1
        return data

    processor = Processor.from_function("c", slow, ProcessorOptions(concurrency=1))
    await backend.run_worker(WorkerOptions(processors=[processor], burst=True, concurrency=3))
    assert peak == 3
    await backend.close()


def _ids(deliveries: Sequence[Delivery]) -> list[str]:
    return [d.job_id for d in deliveries]


async def test_reserve_orders_by_priority_then_fifo_and_skips_delayed(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path / "q.db")
    ids = await backend.enqueue_many(
        [
            EnqueueRequest("p", 0, job_id="plain-1"),
            EnqueueRequest("p", 0, job_id="prio-2", priority=2),
            EnqueueRequest("p", 0, job_id="prio-1", priority=1),
            EnqueueRequest("p", 0, job_id="later", delay_ms=60_000),
            EnqueueRequest("p", 0, job_id="plain-2"),
        ]
    )
    assert ids == ["plain-1", "prio-2", "prio-1", "later", "plain-2"]
    leased = await backend.reserve("p", 10, 30_000, "w")
    # No priority sorts first (BullMQ: jobs without priority go before prioritised ones).
    assert _ids(leased) == ["plain-1", "plain-2", "prio-1", "prio-2"]
    await backend.close()


async def test_sync_processors_run_as_many_at_once_as_the_concurrency() -> None:
    # 40 is more than asyncio's default thread pool ever holds (32): every job waits at a
    # barrier for all the others, so the jobs only complete if all 40 run side by side.
    backend = MemoryBackend()
    jobs = 40
    await backend.enqueue_many([EnqueueRequest("sync", n) for n in range(jobs)])
    barrier = threading.Barrier(jobs, timeout=60)

    def blocking(data: int) -> int:
        barrier.wait()
        return data

    options = ProcessorOptions(concurrency=jobs, timeout=120_000)
    processor = Processor.from_function("sync", blocking, options)
    report = await backend.run_worker(WorkerOptions(processors=[processor], burst=True))
    assert report.completed == jobs, report
    await backend.close()


class Strict(BaseModel):
    n: int

    @field_validator("n")
    @classmethod
    def _not_13(cls, value: int) -> int:
        if value == 13:
            raise KeyError("a validator with a bug")  # not a ValueError: pydantic lets it out
        return value


async def test_a_validator_raising_any_error_dead_letters_the_payload() -> None:
    backend = MemoryBackend()
    ids = await backend.enqueue_many([EnqueueRequest("strict", {"n": n}) for n in (1, 13, 2)])
    seen: list[int] = []

    async def record(data: Strict) -> int:
        seen.append(data.n)
        return data.n

    options = ProcessorOptions(dead_letter_queue="strict-dlq", retry_options={"attempts": 3})
    processor = Processor.from_function("strict", record, options)
    worker = WorkerOptions(processors=[processor], burst=True, lease_ms=400)
    report = await asyncio.wait_for(backend.run_worker(worker), 60)  # a stuck job never drains
    assert sorted(seen) == [1, 2]
    assert (report.completed, report.dead_lettered) == (2, 1)
    [record_] = await backend.dead_letters("strict-dlq")
    assert (record_.job_id, record_.reason, record_.attempts) == (ids[1], "invalid_payload", 1)
    assert record_.error.type == "KeyError"
    await backend.close()


async def test_events_of_a_sync_processor_reach_callbacks_on_the_loop_thread() -> None:
    backend = MemoryBackend()
    await backend.enqueue(EnqueueRequest("threads", 1))
    loop_thread = threading.current_thread()
    seen: list[tuple[str, bool]] = []

    def blocking(ctx: JobContext, data: int) -> int:
        ctx.progress.update(processed=1, total=2)
        return data

    processor = Processor.from_function("threads", blocking)
    options = WorkerOptions(processors=[processor], burst=True)
    options.events.subscribe(
        "*", lambda e: seen.append((e.name, threading.current_thread() is loop_thread))
    )
    await backend.run_worker(options)
    assert seen == [("progress", True), ("completed", True)]
    await backend.close()
