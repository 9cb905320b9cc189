"""The cancel scenarios (`JobHandle.cancel`, `CancelsJobs`): a waiting or delayed job is removed
and never runs; a running one is stopped (an async processor cancelled, a sync one told by
`ctx.cancelled`) and ends `cancelled`, neither retried nor dead-lettered; a later job that
reuses the id is not touched.

A base of `BackendConformance`, so every backend's conformance run covers them; a backend that
does not declare `cancel` (waiting jobs) or `cancel_running` skips the scenario, as the support
table says.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pytest

from pikku_queue.backend import Backend, RemovesJobs, WorkerOptions, WorkerReport
from pikku_queue.client import JobHandle
from pikku_queue.context import JobContext
from pikku_queue.errors import JobCancelledError
from pikku_queue.events import JobEvent
from pikku_queue.options import ProcessorOptions, RetryOptions
from pikku_queue.processor import Processor
from pikku_queue.records import CancelResult, EnqueueRequest, JobState

if TYPE_CHECKING:
    from pikku_queue.capabilities import Feature

#: Most seconds a scenario waits for a job to start, or a sync processor for its cancel.
WAIT_S = 30.0


async def _until(check: Any, what: str) -> None:
    """Wait (bounded by `WAIT_S`) until `check()` is true."""
    deadline = time.monotonic() + WAIT_S
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        await asyncio.sleep(0.01)


class CancelScenarios:
    """Mixed into `BackendConformance`, which provides the helpers named below."""

    if TYPE_CHECKING:
        run_timeout_s: float
        lease_ms: int

        def require(self, backend: Backend, feature: Feature) -> None: ...

        def worker_options(self, processors: Sequence[Processor], **kw: Any) -> WorkerOptions: ...

        async def run_burst(
            self, backend: Backend, processors: Sequence[Processor], **kw: Any
        ) -> WorkerReport: ...

        async def abandon(self, backend: Backend, queue: str) -> str: ...

    def _cancel_processor(self, queue: str, func: Any, **options: Any) -> Processor:
        return Processor.from_function(queue, func, ProcessorOptions(**options))

    async def _enqueue(self, backend: Backend, queue: str, **kw: Any) -> JobHandle[Any]:
        job_id = await backend.enqueue(EnqueueRequest(queue=queue, payload={"n": 1}, **kw))
        return JobHandle(job_id, queue, backend)

    async def _run_and_cancel(
        self, backend: Backend, processor: Processor, handle: JobHandle[Any], started: Any
    ) -> tuple[WorkerReport, list[JobEvent]]:
        """Run a burst worker, cancel `handle` once `started()`, wait for the worker."""
        options = self.worker_options([processor])
        events: list[JobEvent] = []
        options.events.subscribe("*", events.append)
        worker = asyncio.ensure_future(
            asyncio.wait_for(backend.run_worker(options), self.run_timeout_s)
        )
        try:
            await _until(lambda: started() or worker.done(), "the job to start")
            assert not worker.done(), "the worker ended before the job started"
            assert await handle.cancel() is CancelResult.REQUESTED
            report = await worker
        finally:
            if not worker.done():
                worker.cancel()
        return report, events

    # ------------------------------------------------------------------ waiting, delayed

    async def test_cancel_waiting_job_removes_it_and_it_never_runs(
        self, backend: Backend, queue: str
    ) -> None:
        self.require(backend, "cancel")
        ran: list[Any] = []

        async def record(data: Any) -> None:
            ran.append(data)

        handle = await self._enqueue(backend, queue)
        kept = await self._enqueue(backend, queue)
        assert await handle.cancel() is CancelResult.REMOVED
        assert await backend.get_job(queue, handle.id) is None
        assert (await backend.counts(queue)).waiting == 1
        assert await handle.cancel() is CancelResult.NOT_FOUND
        await self.run_burst(backend, [self._cancel_processor(queue, record)])
        assert ran == [{"n": 1}]  # the other job only
        assert await kept.status() == JobState.COMPLETED
        assert await kept.cancel() is CancelResult.FINISHED
        assert await kept.status() == JobState.COMPLETED

    async def test_cancel_delayed_job_removes_it(self, backend: Backend, queue: str) -> None:
        self.require(backend, "cancel")
        self.require(backend, "delay")
        handle = await self._enqueue(backend, queue, delay_ms=3_600_000)
        assert await handle.status() == JobState.DELAYED
        assert await handle.cancel() is CancelResult.REMOVED
        assert await backend.get_job(queue, handle.id) is None
        counts = await backend.counts(queue)
        assert (counts.waiting, counts.delayed, counts.cancelled) == (0, 0, 0)

    # ------------------------------------------------------------------ running

    async def test_cancel_running_async_job_cancels_it_not_retried_nor_dead_lettered(
        self, backend: Backend, queue: str
    ) -> None:
        self.require(backend, "cancel_running")
        dlq = f"{queue}-dlq"
        started = asyncio.Event()
        seen: list[str] = []

        async def hangs(data: Any) -> None:
            started.set()
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                seen.append("CancelledError")
                raise

        processor = self._cancel_processor(
            queue,
            hangs,
            retry_options=RetryOptions(attempts=3, delay=10),
            dead_letter_queue=dlq,
        )
        handle = await self._enqueue(backend, queue)
        report, events = await self._run_and_cancel(backend, processor, handle, started.is_set)
        assert seen == ["CancelledError"]
        info = await handle.info()
        assert info is not None
        assert info.state == JobState.CANCELLED
        assert info.attempts_made == 1  # not retried
        assert info.error is not None and info.error.type == "JobCancelledError"
        assert (report.cancelled, report.retried, report.dead_lettered) == (1, 0, 0)
        assert [e.name for e in events if e.job_id == handle.id] == ["cancelled"]
        assert await backend.dead_letters(dlq) == []
        counts = await backend.counts(queue)
        assert (counts.cancelled, counts.failed, counts.dead_lettered) == (1, 0, 0)
        with pytest.raises(JobCancelledError, match="ended cancelled"):
            await handle.result(timeout=5)
        assert await handle.cancel() is CancelResult.FINISHED

    async def test_cancel_running_sync_job_sets_ctx_cancelled(
        self, backend: Backend, queue: str
    ) -> None:
        self.require(backend, "cancel_running")
        started = threading.Event()
        checks: list[bool] = []

        def steps(ctx: JobContext, data: Any) -> str:
            started.set()
            deadline = time.monotonic() + WAIT_S
            while not ctx.cancelled and time.monotonic() < deadline:
                checks.append(ctx.cancelled)
                time.sleep(0.01)
            checks.append(ctx.cancelled)
            return "stopped"  # returning after the cancel still ends the job cancelled

        processor = self._cancel_processor(queue, steps, retry_options=RetryOptions(attempts=3))
        handle = await self._enqueue(backend, queue)
        report, _ = await self._run_and_cancel(backend, processor, handle, started.is_set)
        assert checks[-1] is True
        assert not any(checks[:-1])
        assert await handle.status() == JobState.CANCELLED
        assert report.cancelled == 1
        assert report.completed == 0

    async def test_cancel_does_not_touch_a_later_job_that_reuses_the_id(
        self, backend: Backend, queue: str
    ) -> None:
        self.require(backend, "cancel")
        self.require(backend, "job_id")
        ran: list[int] = []

        async def record(data: Any) -> None:
            ran.append(data["n"])

        first = await self._enqueue(backend, queue, job_id="reused-1")
        assert await first.cancel() is CancelResult.REMOVED
        again = await self._enqueue(backend, queue, job_id="reused-1")
        assert again.id == first.id
        await self.run_burst(backend, [self._cancel_processor(queue, record)])
        assert ran == [1]
        assert await again.status() == JobState.COMPLETED

    async def test_cancel_of_a_running_job_does_not_touch_the_id_reused_later(
        self, backend: Backend, queue: str
    ) -> None:
        self.require(backend, "cancel_running")
        self.require(backend, "job_id")
        self.require(backend, "remove_job")
        assert isinstance(backend, RemovesJobs)
        started = asyncio.Event()
        runs: list[str] = []

        async def hangs_once(data: Any) -> str:
            runs.append("run")
            if len(runs) == 1:
                started.set()
                await asyncio.sleep(3600)
            return "done"

        processor = self._cancel_processor(queue, hangs_once)
        first = await self._enqueue(backend, queue, job_id="reused-2")
        await self._run_and_cancel(backend, processor, first, started.is_set)
        assert await first.status() == JobState.CANCELLED
        assert await backend.remove_job(queue, first.id)
        again = await self._enqueue(backend, queue, job_id="reused-2")
        report = await self.run_burst(backend, [processor])
        assert (report.completed, report.cancelled) == (1, 0)
        assert await again.status() == JobState.COMPLETED
        assert runs == ["run", "run"]

    async def test_a_cancel_that_meets_a_failing_attempt_ends_it_cancelled(
        self, backend: Backend, queue: str
    ) -> None:
        """The request arrives as the attempt fails (here: the processor asks for its own
        cancel, then raises at once, before or after its worker's poll sees it): the job ends
        cancelled, neither retried nor dead-lettered, on every path a verdict is stored."""
        self.require(backend, "cancel_running")
        dlq = f"{queue}-dlq"
        tries: list[int] = []

        async def fails(ctx: JobContext, data: Any) -> None:
            tries.append(ctx.attempt)
            assert await JobHandle(ctx.job_id, ctx.queue, backend).cancel() is (
                CancelResult.REQUESTED
            )
            raise RuntimeError("failing as the cancel arrives")

        processor = self._cancel_processor(
            queue, fails, retry_options=RetryOptions(attempts=3, delay=10), dead_letter_queue=dlq
        )
        handle = await self._enqueue(backend, queue)
        await self.run_burst(backend, [processor])
        assert tries == [1]
        assert await handle.status() == JobState.CANCELLED
        assert await backend.dead_letters(dlq) == []

    async def test_a_cancelled_job_whose_worker_died_ends_cancelled(
        self, backend: Backend, queue: str
    ) -> None:
        """Asked to stop while its worker is dead (its lease or lock running out): the job is
        not run to the end by the worker that recovers it; it ends cancelled."""
        self.require(backend, "cancel_running")
        self.require(backend, "stalled_recovery")
        finished: list[int] = []

        async def slow(data: Any) -> None:
            await asyncio.sleep(WAIT_S)  # the stop request must end it well before
            finished.append(1)

        handle = await self._enqueue(backend, queue)
        assert await self.abandon(backend, queue) == handle.id
        await asyncio.sleep(self.lease_ms / 1000 + 0.3)  # its lease (or lock) has run out
        assert await handle.cancel() is CancelResult.REQUESTED
        processor = self._cancel_processor(queue, slow, max_stalled_count=5)
        await self.run_burst(backend, [processor])
        assert finished == []
        assert await handle.status() == JobState.CANCELLED
