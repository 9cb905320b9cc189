"""The generic pull loop never leaves a job leased for good: not when an exception escapes the
engine, not when recording a verdict fails. Real SQLite files; the sources below are the real
SQLite backend with one step made to fail."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from pikku_queue.adapters.sqlite.backend import SqliteBackend
from pikku_queue.backend import WorkerOptions
from pikku_queue.errors import BackendError
from pikku_queue.options import BatchOptions, ProcessorOptions, RetryOptions
from pikku_queue.outcomes import Delivery, Outcome
from pikku_queue.processor import Processor
from pikku_queue.pull import run_pull_worker
from pikku_queue.records import EnqueueRequest, JobState

#: A stuck job never drains, so a burst worker would wait for ever: the bound turns that into a
#: failure. It is far above what the tests need, not a timing assertion.
STUCK_S = 30


async def test_an_exception_escaping_the_engine_is_a_failed_attempt(tmp_path: Path) -> None:
    # A CancelledError raised by the processor itself (not a shutdown) is a BaseException the
    # engine lets through. The attempt fails under the retry rule; the job is not left leased.
    backend = SqliteBackend(tmp_path / "q.db")
    job = await backend.enqueue(EnqueueRequest("q", 1))
    runs: Counter[int] = Counter()

    async def flaky(data: int) -> int:
        runs[data] += 1
        if runs[data] == 1:
            raise asyncio.CancelledError("a library cancelled its own work")
        return data

    options = ProcessorOptions(retry_options=RetryOptions(attempts=2))
    worker = WorkerOptions(processors=[Processor.from_function("q", flaky, options)], burst=True)
    report = await asyncio.wait_for(backend.run_worker(worker), STUCK_S)
    assert (report.retried, report.completed) == (1, 1)
    info = await backend.get_job("q", job)
    assert info is not None and info.state == JobState.COMPLETED
    assert info.attempts_made == 2
    await backend.close()


async def test_an_exception_escaping_a_batch_dead_letters_at_the_last_attempt(
    tmp_path: Path,
) -> None:
    backend = SqliteBackend(tmp_path / "q.db")
    ids = await backend.enqueue_many([EnqueueRequest("b", n) for n in (1, 2)])

    async def broken(data: list[int]) -> list[int]:
        raise asyncio.CancelledError("escapes the engine")

    options = ProcessorOptions(
        batch=BatchOptions(size=2, timeout=0), dead_letter_queue="b-dlq"
    )  # attempts=1: the failed attempt is the last one
    worker = WorkerOptions(processors=[Processor.from_function("b", broken, options)], burst=True)
    report = await asyncio.wait_for(backend.run_worker(worker), STUCK_S)
    assert report.dead_lettered == 2
    records = await backend.dead_letters("b-dlq")
    assert sorted(r.job_id for r in records) == sorted(ids)
    assert {(r.reason, r.error.type) for r in records} == {("attempts_exhausted", "CancelledError")}
    await backend.close()


class SettleFailsOnce(SqliteBackend):
    """A real SQLite store whose first verdict cannot be written (a lost connection)."""

    failures = 1

    async def settle_many(
        self, settled: Sequence[tuple[Delivery, Outcome]], dead_letter_queue: str | None
    ) -> None:
        if self.failures:
            self.failures -= 1
            raise BackendError("connection lost while settling")
        await super().settle_many(settled, dead_letter_queue)


async def test_a_job_whose_settle_failed_comes_back_when_its_lease_expires(tmp_path: Path) -> None:
    # Were the job still counted as leased, housekeeping would extend its lease as long as the
    # worker lives and the job would never run again.
    backend = SettleFailsOnce(tmp_path / "q.db")
    job = await backend.enqueue(EnqueueRequest("s", 7))
    runs: Counter[int] = Counter()

    async def echo(data: int) -> int:
        runs[data] += 1
        return data

    processor = Processor.from_function("s", echo)
    options = WorkerOptions(processors=[processor], burst=True, lease_ms=300)
    report = await asyncio.wait_for(run_pull_worker(backend, backend, options), STUCK_S)
    assert backend.failures == 0
    assert runs == Counter({7: 2})  # at-least-once: the unrecorded run happens again
    assert (report.stalled, report.completed) == (1, 1)
    info = await backend.get_job("s", job)
    assert info is not None and info.state == JobState.COMPLETED
    await backend.close()
