"""The monitor's scenarios: jobs by state a page at a time, and retry, remove, promote,
pause/resume and clean (the optional protocols at the end of `pikku_queue.backend`).

A base of `BackendConformance`, so every backend's conformance run covers them; a backend that
does not declare a feature skips its scenario, as the support table says.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pytest

from pikku_queue.backend import (
    Backend,
    CleansJobs,
    ListsJobs,
    PausesQueues,
    PromotesJobs,
    PullSource,
    RemovesJobs,
    RetriesJobs,
    WorkerReport,
)
from pikku_queue.errors import NonRetryableError
from pikku_queue.options import ProcessorOptions
from pikku_queue.processor import Processor
from pikku_queue.records import EnqueueRequest, JobInfo, JobState

if TYPE_CHECKING:
    from pikku_queue.capabilities import Feature

#: Ids of the allowed forms (`options.validate_job_id`) a URL would mangle.
AWKWARD_IDS = ["a/b", "..", "%2F..", "x?y#z&"]


def _settles(fail: Sequence[str] = ()) -> Processor:
    """A processor whose jobs complete, except those whose `n` is in `fail` (for good)."""

    async def run(data: dict[str, Any]) -> str:
        if data["n"] in fail:
            raise NonRetryableError(f"{data['n']} cannot work")
        return f"done {data['n']}"

    return Processor.from_function("placeholder", run)


class AdminScenarios:
    """Mixed into `BackendConformance`, which provides the helpers named below."""

    if TYPE_CHECKING:

        def require(self, backend: Backend, feature: Feature) -> None: ...

        async def run_burst(
            self, backend: Backend, processors: Sequence[Processor], **kw: Any
        ) -> WorkerReport: ...

    def _processor(self, queue: str, fail: Sequence[str] = (), dlq: str | None = None) -> Processor:
        base = _settles(fail)
        return Processor.from_function(queue, base.func, ProcessorOptions(dead_letter_queue=dlq))

    async def _all(self, backend: ListsJobs, queue: str, state: JobState, limit: int) -> list[str]:
        """Every job of `state`, page by page (bounded: a cursor that never ends fails)."""
        ids: list[str] = []
        cursor: str | None = None
        for _ in range(1000):
            page = await backend.list_jobs(queue, state, limit, cursor)
            assert len(page.jobs) <= limit
            ids += [job.id for job in page.jobs]
            cursor = page.next_cursor
            if cursor is None:
                return ids
        raise AssertionError("the pages never ended")

    async def _finished(self, backend: Backend, queue: str, fail: Sequence[str]) -> None:
        """`ok-0..2` completed and the jobs named in `fail` failed for good."""
        for n in ["ok-0", "ok-1", "ok-2", *fail]:
            await backend.enqueue(EnqueueRequest(queue, {"n": n}, job_id=f"job-{n}"))
        await self.run_burst(backend, [self._processor(queue, fail)])

    async def test_jobs_listed_by_state_a_page_at_a_time(
        self, backend: Backend, queue: str
    ) -> None:
        self.require(backend, "list_jobs")
        assert isinstance(backend, ListsJobs)
        dlq = f"{queue}-dlq"
        await self._finished(backend, queue, ["bad-0", "bad-1"])
        dead = f"{queue}-dead"
        await backend.enqueue(EnqueueRequest(dead, {"n": "bad-9"}, job_id="job-dead"))
        await self.run_burst(backend, [self._processor(dead, ["bad-9"], dlq)])
        waiting = [f"w-{n}" for n in range(5)] + AWKWARD_IDS
        for job_id in waiting:
            await backend.enqueue(EnqueueRequest(queue, {"n": job_id}, job_id=job_id))
        await backend.enqueue(EnqueueRequest(queue, {"n": 0}, job_id="later", delay_ms=600_000))

        assert await self._all(backend, queue, JobState.WAITING, 2) == waiting[::-1]
        assert await self._all(backend, queue, JobState.DELAYED, 2) == ["later"]
        assert await self._all(backend, queue, JobState.ACTIVE, 2) == []
        assert sorted(await self._all(backend, queue, JobState.COMPLETED, 2)) == [
            "job-ok-0", "job-ok-1", "job-ok-2",
        ]  # fmt: skip
        assert sorted(await self._all(backend, queue, JobState.FAILED, 1)) == [
            "job-bad-0", "job-bad-1",
        ]  # fmt: skip
        assert await self._all(backend, queue, JobState.DEAD_LETTERED, 2) == []
        assert await self._all(backend, dead, JobState.DEAD_LETTERED, 2) == ["job-dead"]
        assert await self._all(backend, dead, JobState.FAILED, 2) == []
        [record] = await self._all(backend, dlq, JobState.WAITING, 5)
        assert [r.id for r in await backend.dead_letters(dlq)] == [record]
        page = await backend.list_jobs(queue, JobState.FAILED, 5)
        assert all(job.error is not None and job.state is JobState.FAILED for job in page.jobs)
        counts = await backend.counts(queue)
        assert (counts.waiting, counts.delayed) == (len(waiting), 1)

    async def test_a_failed_job_retried_runs_again_under_its_id(
        self, backend: Backend, queue: str
    ) -> None:
        self.require(backend, "retry_job")
        assert isinstance(backend, RetriesJobs)
        await self._finished(backend, queue, ["bad-0"])
        assert not await backend.retry_job(queue, "job-ok-0")  # completed: not failed
        assert not await backend.retry_job(queue, "no-such-job")
        assert await backend.retry_job(queue, "job-bad-0")
        info = await backend.get_job(queue, "job-bad-0")
        assert info is not None and info.state is JobState.WAITING and info.error is None
        assert info.attempts_made == 0
        await self.run_burst(backend, [self._processor(queue)])
        done = await backend.get_job(queue, "job-bad-0")
        assert done is not None and done.state is JobState.COMPLETED
        assert done.result == "done bad-0" and done.attempts_made == 1
        assert not await backend.retry_job(queue, "job-bad-0")

    async def test_a_dead_lettered_job_is_not_retried_its_record_is_replayed(
        self, backend: Backend, queue: str
    ) -> None:
        self.require(backend, "retry_job")
        assert isinstance(backend, RetriesJobs)
        dlq = f"{queue}-dlq"
        await backend.enqueue(EnqueueRequest(queue, {"n": "bad"}, job_id="job-bad"))
        await self.run_burst(backend, [self._processor(queue, ["bad"], dlq)])
        assert not await backend.retry_job(queue, "job-bad")
        assert await backend.replay(dlq) == 1
        await self.run_burst(backend, [self._processor(queue)])
        info = await backend.get_job(queue, "job-bad")
        assert info is not None and info.state is JobState.COMPLETED

    async def test_remove_takes_any_job_but_an_active_one(
        self, backend: Backend, queue: str
    ) -> None:
        self.require(backend, "remove_job")
        assert isinstance(backend, RemovesJobs)
        await self._finished(backend, queue, ["bad-0"])
        await backend.enqueue(EnqueueRequest(queue, {"n": 1}, job_id="a/b"))
        await backend.enqueue(EnqueueRequest(queue, {"n": 2}, job_id="later", delay_ms=600_000))
        for job_id in ("job-ok-0", "job-bad-0", "a/b", "later"):
            assert await backend.remove_job(queue, job_id), job_id
            assert await backend.get_job(queue, job_id) is None, job_id
        assert not await backend.remove_job(queue, "a/b")
        counts = await backend.counts(queue)
        assert (counts.completed, counts.failed, counts.waiting, counts.delayed) == (2, 0, 0, 0)
        if isinstance(backend, PullSource):
            await backend.enqueue(EnqueueRequest(queue, {"n": 3}, job_id="busy"))
            [leased] = await backend.reserve(queue, 1, 30_000, "a-worker")
            assert not await backend.remove_job(queue, leased.job_id)
            await backend.release(queue, [leased.job_id])

    async def test_a_delayed_job_promoted_is_due_now(self, backend: Backend, queue: str) -> None:
        self.require(backend, "promote_job")
        assert isinstance(backend, PromotesJobs)
        await backend.enqueue(EnqueueRequest(queue, {"n": "p"}, job_id="later", delay_ms=600_000))
        await backend.enqueue(EnqueueRequest(queue, {"n": "w"}, job_id="now"))
        assert not await backend.promote_job(queue, "now")
        assert await backend.promote_job(queue, "later")
        counts = await backend.counts(queue)
        assert (counts.waiting, counts.delayed) == (2, 0)
        report = await self.run_burst(backend, [self._processor(queue)])
        assert report.completed == 2
        assert not await backend.promote_job(queue, "later")

    async def test_a_paused_queue_is_left_alone_until_resumed(
        self, backend: Backend, queue: str
    ) -> None:
        self.require(backend, "pause_queue")
        assert isinstance(backend, PausesQueues)
        await backend.enqueue(EnqueueRequest(queue, {"n": 1}, job_id="held"))
        assert not await backend.is_paused(queue)
        await backend.pause_queue(queue)
        assert await backend.is_paused(queue)
        report = await self.run_burst(backend, [self._processor(queue)])  # does not wait
        assert report.completed == 0
        held = await backend.get_job(queue, "held")
        assert held is not None and held.state is JobState.WAITING
        await backend.resume_queue(queue)
        assert not await backend.is_paused(queue)
        report = await self.run_burst(backend, [self._processor(queue)])
        assert report.completed == 1

    async def test_clean_removes_completed_or_failed_jobs(
        self, backend: Backend, queue: str
    ) -> None:
        self.require(backend, "clean_jobs")
        assert isinstance(backend, CleansJobs)
        await self._finished(backend, queue, ["bad-0", "bad-1"])
        dlq = f"{queue}-dlq"
        await backend.enqueue(EnqueueRequest(queue, {"n": "bad-2"}, job_id="job-dead"))
        await self.run_burst(backend, [self._processor(queue, ["bad-2"], dlq)])
        await backend.enqueue(EnqueueRequest(queue, {"n": "w"}, job_id="still-waiting"))
        assert await backend.clean_jobs(queue, JobState.COMPLETED, grace_ms=600_000) == 0
        assert await backend.clean_jobs(queue, JobState.COMPLETED) == 3
        counts = await backend.counts(queue)
        assert (counts.completed, counts.failed, counts.dead_lettered) == (0, 2, 1)
        assert await backend.clean_jobs(queue, JobState.FAILED) == 3
        counts = await backend.counts(queue)
        assert (counts.failed, counts.dead_lettered, counts.waiting) == (0, 0, 1)
        assert len(await backend.dead_letters(dlq)) == 1  # the record itself stays
        with pytest.raises(Exception, match="completed or failed"):
            await backend.clean_jobs(queue, JobState.WAITING)

    async def test_a_job_of_any_allowed_id_is_looked_up(self, backend: Backend, queue: str) -> None:
        self.require(backend, "results")
        for job_id in AWKWARD_IDS:
            await backend.enqueue(EnqueueRequest(queue, {"n": job_id}, job_id=job_id))
        for job_id in AWKWARD_IDS:
            info: JobInfo | None = await backend.get_job(queue, job_id)
            assert info is not None and info.payload == {"n": job_id}, job_id
