"""The rate-limit and deduplication scenarios (`RateLimit`, `Dedupe`): a base of
`BackendConformance`, so every backend's run covers them; a backend that does not declare a
feature skips its scenario, as the support table says.

Starts are timed by the processor itself. The rule checked is the limit's own: a window opens
at a start and lasts `per_ms`; no window holds more than `max` starts (`windows_of`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pytest
from pydantic import BaseModel, TypeAdapter

from pikku_queue.backend import Backend, RemovesJobs, WorkerReport
from pikku_queue.capabilities import DEDUPE_FEATURES
from pikku_queue.client import TypedQueue
from pikku_queue.errors import BackendError, InvalidEnqueueOptionsError
from pikku_queue.options import Dedupe, ProcessorOptions, RateLimit
from pikku_queue.processor import Processor
from pikku_queue.records import JobState

if TYPE_CHECKING:
    from pikku_queue.capabilities import Feature


class Tick(BaseModel):
    n: int


def ticks(name: str, options: ProcessorOptions | None = None) -> TypedQueue[Tick, int]:
    """A typed queue of `Tick` payloads (these scenarios' own; the suite's `Item` lives above
    this module)."""
    return TypedQueue(name, TypeAdapter(Tick), TypeAdapter(int), options)


def windows_of(starts: Sequence[float], per_ms: int) -> list[list[float]]:
    """Start times (ms) cut into the windows a limiter of `per_ms` opens: each at the first
    start after the previous window ended. Starts are measured a little after the backend
    counts them, so a window is taken as 3/4 of `per_ms`: that much slack never merges two
    real windows (a real window's starts come at its opening when jobs wait), and a limit
    that does not hold still shows as a window of more than `max`."""
    span = per_ms * 0.75
    windows: list[list[float]] = []
    for start in sorted(starts):
        if windows and start < windows[-1][0] + span:
            windows[-1].append(start)
        else:
            windows.append([start])
    return windows


class LimitScenarios:
    """Mixed into `BackendConformance`, which provides the helpers named below."""

    #: The rate-limit scenarios' window (ms): short, so they finish in a second or two.
    rate_window_ms: int = 400

    @pytest.fixture
    def dedupe_queue(self, queue: str) -> str:
        """The queue the deduplication scenarios use (SQS: a FIFO queue, the only kind that
        deduplicates)."""
        return queue

    if TYPE_CHECKING:

        def require(self, backend: Backend, feature: Feature) -> None: ...

        def processor(self, name: str, func: Any, **options: Any) -> Processor: ...

        async def run_burst(
            self, backend: Backend, processors: Sequence[Processor], **kw: Any
        ) -> WorkerReport: ...

        async def enqueue_raw(
            self, backend: Backend, queue: str, payload: Any, **kw: Any
        ) -> str: ...

    # ------------------------------------------------------------------ rate limits

    async def test_rate_limit_holds_across_workers_and_counts_no_attempt(
        self, backend: Backend, queue: str
    ) -> None:
        self.require(backend, "rate_limit")

        starts: list[float] = []

        async def record(data: Tick) -> int:
            starts.append(time.monotonic() * 1000)
            return data.n

        ids = [await self.enqueue_raw(backend, queue, {"n": n}) for n in range(9)]
        limit = RateLimit(max=3, per_ms=self.rate_window_ms)
        processors = [self.processor(queue, record, concurrency=6, rate_limit=limit)]
        reports = await asyncio.gather(
            self.run_burst(backend, processors), self.run_burst(backend, processors)
        )
        assert sum(r.completed for r in reports) == 9
        windows = windows_of(starts, limit.per_ms)
        assert max(len(w) for w in windows) <= limit.max, windows
        assert len(windows) >= 3  # 9 starts, 3 a window
        counts = await backend.counts(queue)
        assert counts.completed == 9 and counts.failed == 0
        for job_id in ids:
            info = await backend.get_job(queue, job_id)
            assert info is not None and info.attempts_made == 1  # waiting is not an attempt

    async def test_rate_limit_per_group_limits_each_value_alone(
        self, backend: Backend, queue: str
    ) -> None:
        self.require(backend, "rate_limit_group")

        starts: dict[str, list[float]] = {"a": [], "b": []}

        async def record(data: dict[str, Any]) -> int:
            starts[data["tenant"]].append(time.monotonic() * 1000)
            return int(data["n"])

        for n in range(3):
            for tenant in ("a", "b"):
                await self.enqueue_raw(backend, queue, {"n": n, "tenant": tenant})
        limit = RateLimit(max=1, per_ms=self.rate_window_ms, group_key="tenant")
        processors = [self.processor(queue, record, concurrency=4, rate_limit=limit)]
        report = await self.run_burst(backend, processors)
        assert report.completed == 6
        for tenant, times in starts.items():
            windows = windows_of(times, limit.per_ms)
            assert max(len(w) for w in windows) <= 1, (tenant, windows)
        # each tenant has its own window: both started in the first one
        first = min(min(t) for t in starts.values())
        assert all(min(t) < first + limit.per_ms * 0.75 for t in starts.values()), starts

    # ------------------------------------------------------------------ deduplication

    async def test_dedupe_drop_points_to_the_first_job(
        self, backend: Backend, dedupe_queue: str
    ) -> None:
        self.require(backend, "dedupe")

        seen: list[int] = []

        async def record(data: Tick) -> int:
            seen.append(data.n)
            return data.n

        typed = ticks(dedupe_queue)
        dedupe = Dedupe(key="item-{n}", ttl_ms=60_000)
        first = await typed.enqueue(Tick(n=1), dedupe=dedupe, backend=backend)
        again = await typed.enqueue(Tick(n=1), dedupe=dedupe, backend=backend)
        other = await typed.enqueue(Tick(n=2), dedupe=dedupe, backend=backend)
        plain = await typed.enqueue(Tick(n=1), backend=backend)  # no dedupe: a job of its own
        assert again.id == first.id
        assert len({first.id, other.id, plain.id}) == 3
        assert (await backend.counts(dedupe_queue)).waiting == 3
        await self.run_burst(backend, [self.processor(dedupe_queue, record)])
        assert sorted(seen) == [1, 1, 2]
        # the window is the ttl, not the job's life: a finished job still holds the key
        late = await typed.enqueue(Tick(n=1), dedupe=dedupe, backend=backend)
        assert late.id == first.id
        if backend.capabilities.supports("results"):
            assert await late.status() == JobState.COMPLETED

    async def test_dedupe_window_ends_after_ttl(self, backend: Backend, dedupe_queue: str) -> None:
        self.require(backend, "dedupe")
        if backend.capabilities.dedupe_window_ms is not None:
            pytest.skip(
                f"{backend.capabilities.backend} keeps its own deduplication window "
                f"({backend.capabilities.dedupe_window_ms} ms), not ttl_ms"
            )

        typed = ticks(dedupe_queue, ProcessorOptions(dedupe=Dedupe(key="{n}", ttl_ms=300)))
        first = await typed.enqueue(Tick(n=7), backend=backend)  # the processor's dedupe
        assert (await typed.enqueue(Tick(n=7), backend=backend)).id == first.id
        await asyncio.sleep(0.6)
        later = await typed.enqueue(Tick(n=7), backend=backend)
        assert later.id != first.id
        assert (await backend.counts(dedupe_queue)).waiting == 2

    async def test_dedupe_replace_debounces_a_delayed_job(
        self, backend: Backend, queue: str
    ) -> None:
        self.require(backend, "dedupe_replace")
        self.require(backend, "delay")

        seen: list[int] = []

        async def record(data: Tick) -> int:
            seen.append(data.n)
            return data.n

        typed = ticks(queue)
        dedupe = Dedupe(key="latest", ttl_ms=60_000, mode="replace")
        first = await typed.enqueue(Tick(n=1), delay=300, dedupe=dedupe, backend=backend)
        second = await typed.enqueue(Tick(n=2), delay=300, dedupe=dedupe, backend=backend)
        third = await typed.enqueue(Tick(n=3), delay=300, dedupe=dedupe, backend=backend)
        assert len({first.id, second.id, third.id}) == 3
        assert await backend.get_job(queue, first.id) is None  # replaced: gone
        assert await backend.get_job(queue, second.id) is None
        counts = await backend.counts(queue)
        assert counts.delayed == 1 and counts.waiting == 0
        await self.run_burst(backend, [self.processor(queue, record)])
        assert seen == [3]
        # once the job is no longer delayed, a new one within the window is dropped
        after = await typed.enqueue(Tick(n=4), delay=300, dedupe=dedupe, backend=backend)
        assert after.id == third.id

    async def test_dedupe_extend_pushes_the_delay_back(self, backend: Backend, queue: str) -> None:
        self.require(backend, "dedupe_extend")
        self.require(backend, "delay")

        ran_at: list[float] = []

        async def record(data: Tick) -> int:
            ran_at.append(time.time() * 1000)
            return data.n

        typed = ticks(queue)
        dedupe = Dedupe(key="tick", ttl_ms=60_000, mode="extend")
        first = await typed.enqueue(Tick(n=1), delay=400, dedupe=dedupe, backend=backend)
        await asyncio.sleep(0.2)
        pushed_at = time.time() * 1000
        second = await typed.enqueue(Tick(n=2), delay=400, dedupe=dedupe, backend=backend)
        assert second.id == first.id
        assert (await backend.counts(queue)).delayed == 1
        await self.run_burst(backend, [self.processor(queue, record)])
        assert len(ran_at) == 1
        assert ran_at[0] >= pushed_at + 400  # the second enqueue's delay, not the first's
        info = await backend.get_job(queue, first.id)
        assert info is not None and info.payload == {"n": 1}  # the first payload is kept

    async def test_removing_a_job_frees_its_dedupe_key(
        self, backend: Backend, dedupe_queue: str
    ) -> None:
        self.require(backend, "dedupe")
        self.require(backend, "remove_job")
        assert isinstance(backend, RemovesJobs)
        dedupe = Dedupe(key="{n}", ttl_ms=60_000)
        first = await ticks(dedupe_queue).enqueue(Tick(n=1), dedupe=dedupe, backend=backend)
        assert await backend.remove_job(dedupe_queue, first.id)
        again = await ticks(dedupe_queue).enqueue(Tick(n=1), dedupe=dedupe, backend=backend)
        assert again.id != first.id  # as BullMQ's removeJob drops the `de:` key
        assert (await backend.counts(dedupe_queue)).waiting == 1

    async def test_dedupe_key_naming_a_missing_field_is_refused(
        self, backend: Backend, dedupe_queue: str
    ) -> None:
        self.require(backend, "dedupe")

        with pytest.raises(InvalidEnqueueOptionsError, match="'user_id'"):
            await ticks(dedupe_queue).enqueue(
                Tick(n=1), dedupe=Dedupe(key="{user_id}", ttl_ms=1000), backend=backend
            )
        assert (await backend.counts(dedupe_queue)).waiting == 0

    async def test_unsupported_dedupe_mode_is_refused_at_enqueue(
        self, backend: Backend, dedupe_queue: str
    ) -> None:

        missing = [m for m, f in DEDUPE_FEATURES.items() if not backend.capabilities.supports(f)]
        if not missing:
            pytest.skip(f"{backend.capabilities.backend} supports every dedupe mode")
        dedupe = Dedupe(key="{n}", ttl_ms=1000, mode=missing[0])
        with pytest.raises(BackendError, match="dedupe mode"):
            await ticks(dedupe_queue).enqueue(Tick(n=1), dedupe=dedupe, backend=backend)
