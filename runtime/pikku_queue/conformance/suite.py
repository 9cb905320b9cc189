"""The scenarios. Each test makes its own uniquely named queue, so a shared server is fine."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pytest
from pydantic import BaseModel, TypeAdapter

from pikku_queue.backend import Backend, BulkEnqueue, PullSource, WorkerOptions, WorkerReport
from pikku_queue.capabilities import Feature
from pikku_queue.client import JobHandle, TypedQueue
from pikku_queue.conformance.admin import AdminScenarios
from pikku_queue.conformance.limits import LimitScenarios
from pikku_queue.context import JobContext
from pikku_queue.errors import JobFailedError, NonRetryableError, PayloadValidationError
from pikku_queue.events import JobEvent
from pikku_queue.monitor import QueueMonitor
from pikku_queue.options import BatchOptions, ProcessorOptions, Repeat, RetryOptions
from pikku_queue.outcomes import stalled_error
from pikku_queue.payloads import raw_bytes
from pikku_queue.processor import Processor
from pikku_queue.records import DeadLetterRecord, EnqueueRequest, JobInfo, JobState

if TYPE_CHECKING:
    # hypothesis is a test dependency: the stored-field scenario imports it when it runs, so
    # this module (and the runtime) imports with pydantic and pytest alone.
    from hypothesis.strategies import SearchStrategy

#: Payloads no strict JSON writer could write back (`pikku_queue.payloads`), as raw stored
#: text or bytes: what `json.dumps` writes by default for NaN and the infinities, a lone
#: surrogate escape, bytes that are not UTF-8, text that is not JSON.
UNDECODABLE_PAYLOADS: list[str | bytes] = [
    '{"n":NaN}',
    '{"n":Infinity}',
    '{"n":-Infinity}',
    '{"n":"\\ud800"}',
    b'{"n":"\xff\xfe"}',
    "not json {",
]
UNDECODABLE_IDS = ["nan", "infinity", "minus-infinity", "lone-surrogate", "bad-utf8", "not-json"]


class Measured(BaseModel):
    value: float


#: Results a processor may return that no strict JSON writer can store. NaN and the
#: infinities go in a float-typed model (under `-> Any` pydantic dumps them as None); the
#: rest are returned as `-> Any`, which keeps them as they are.
UNSTORABLE_RESULTS: list[Any] = [
    Measured(value=float("nan")),
    Measured(value=float("-inf")),
    {"name": "\ud800"},
    {"when": object()},
]
UNSTORABLE_IDS = ["nan", "infinity", "lone-surrogate", "no-json-form"]

#: Payloads handed to a backend's enqueue that no strict JSON writer can store.
UNWRITABLE_PAYLOADS: list[Any] = [
    {"n": float("nan")},
    {"n": float("inf")},
    {"n": float("-inf")},
    {"name": "\ud800"},
    {"nested": [{"name": "x\udfff"}]},
]
UNWRITABLE_IDS = ["nan", "infinity", "minus-infinity", "lone-surrogate", "nested-lone-surrogate"]


#: The cases found by hand, by the name of the stored field they go in: a backend storing a
#: field of that name runs them as explicit examples of the stored-field scenario, before the
#: generated ones, and each must end in a dead letter (or a failed job) naming the field.
NAMED_STORED_VALUES: dict[str, list[tuple[str, object]]] = {
    # a number that overflows a float: the strict reader refuses it like NaN and Infinity
    "payload": [("overflowing-number", '{"id": 1e400}'), ("minus-overflow", '{"n": -1e400}')],
    "body": [("overflowing-number", '{"id": 1e400}'), ("minus-overflow", '{"n": -1e400}')],
    "data": [("overflowing-number", '{"id": 1e400}'), ("minus-overflow", '{"n": -1e400}')],
    # SQLite: one row's meta is not JSON, one row's priority is text
    "meta": [("meta-not-json", "not json {"), ("meta-json-array", "[1, 2]")],
    "priority": [("priority-text", "abc")],
    # BullMQ hash fields
    "opts": [("opts-not-json", "{{"), ("opts-json-array", "[1]")],
    "timestamp": [("timestamp-not-integer", "abc")],
    "atm": [("atm-not-integer", "1.5x")],
}


class StoredValueRefused(Exception):
    """Raised by `BackendConformance.corrupt` when the store itself refuses the value (text
    into a PostgreSQL integer column): no writer, foreign or ours, can put it there. The
    example then checks that the refused write left the job as it was: it runs like its
    neighbours."""


class Item(BaseModel):
    n: int


class Doubled(BaseModel):
    n: int


class BackendConformance(AdminScenarios, LimitScenarios):
    """Subclass as `Test<YourBackend>` and provide a `backend` fixture (see the package doc)."""

    #: Lease length for workers in these scenarios; stalled-job scenarios wait about this long.
    lease_ms: int = 1000
    #: Base retry delay; backoff scenarios check the gaps between tries are at least this.
    backoff_ms: int = 100
    #: The delay of the delayed-job scenario.
    delay_ms: int = 500
    #: A scenario's worker is abandoned (test fails) after this long.
    run_timeout_s: float = 30.0

    # ------------------------------------------------------------------ helpers

    @pytest.fixture
    def queue(self) -> str:
        return f"conf-{uuid.uuid4().hex[:12]}"

    def require(self, backend: Backend, feature: Feature) -> None:
        if not backend.capabilities.supports(feature):
            pytest.skip(f"{backend.capabilities.backend} does not support {feature}")
        if feature == "cron" and not backend.capabilities.job_repeat:
            # the suite's repeat scenarios enqueue per-job schedules
            pytest.skip(f"{backend.capabilities.backend} refuses a per-job Repeat at enqueue")

    def processor(self, name: str, func: Callable[..., Any], **options: Any) -> Processor:
        return Processor.from_function(name, func, ProcessorOptions(**options))

    def typed(
        self, name: str, options: ProcessorOptions | None = None
    ) -> TypedQueue[Item, Doubled]:
        return TypedQueue(name, TypeAdapter(Item), TypeAdapter(Doubled), options)

    def worker_options(self, processors: Sequence[Processor], **kw: Any) -> WorkerOptions:
        kw.setdefault("lease_ms", self.lease_ms)
        kw.setdefault("grace_period_s", 5.0)
        return WorkerOptions(processors=processors, burst=True, **kw)

    async def run_burst(
        self, backend: Backend, processors: Sequence[Processor], **kw: Any
    ) -> WorkerReport:
        options = self.worker_options(processors, **kw)
        return await asyncio.wait_for(backend.run_worker(options), self.run_timeout_s)

    async def enqueue_raw(self, backend: Backend, queue: str, payload: Any, **kw: Any) -> str:
        return await backend.enqueue(EnqueueRequest(queue=queue, payload=payload, **kw))

    async def job(self, backend: Backend, queue: str, job_id: str) -> JobInfo:
        info = await backend.get_job(queue, job_id)
        assert info is not None, f"job {job_id} of {queue} vanished"
        return info

    async def abandon(self, backend: Backend, queue: str) -> str:
        """Lease one job of `queue` as a worker that then dies; return its id."""
        if not isinstance(backend, PullSource):
            pytest.skip("override BackendConformance.abandon for a backend that is no PullSource")
        leased = await backend.reserve(queue, 1, self.lease_ms, "a-worker-that-died")
        assert len(leased) == 1
        return leased[0].job_id

    # ------------------------------------------------------------------ validation

    async def test_validation_at_enqueue_sends_nothing(self, backend: Backend, queue: str) -> None:
        with pytest.raises(PayloadValidationError) as caught:
            await self.typed(queue).enqueue({"n": "not a number"}, backend=backend)  # type: ignore[arg-type]
        assert "n" in str(caught.value)
        counts = await backend.counts(queue)
        assert counts.waiting + counts.delayed + counts.active == 0

    @pytest.mark.parametrize("payload", UNWRITABLE_PAYLOADS, ids=UNWRITABLE_IDS)
    async def test_unwritable_payload_refused_at_enqueue(
        self, backend: Backend, queue: str, payload: Any
    ) -> None:
        """NaN, the infinities or a lone surrogate in a payload: the writers' rule
        (`payloads.dump_payload`) refuses it at enqueue with the same PayloadValidationError
        on every backend, one at a time and in a batch, and nothing is stored."""
        request = EnqueueRequest(queue=queue, payload=payload)
        with pytest.raises(PayloadValidationError) as caught:
            await backend.enqueue(request)
        assert caught.value.queue == queue
        assert caught.value.detail.startswith("not JSON-serialisable: "), caught.value.detail
        if isinstance(backend, BulkEnqueue):
            fine = EnqueueRequest(queue=queue, payload={"n": 1})
            with pytest.raises(PayloadValidationError) as batch:
                await backend.enqueue_many([fine, request])
            assert batch.value.detail == caught.value.detail
        counts = await backend.counts(queue)
        assert counts.waiting + counts.delayed + counts.active == 0

    async def test_invalid_payload_at_worker_dead_letters_and_worker_goes_on(
        self, backend: Backend, queue: str
    ) -> None:
        self.require(backend, "dead_letter")
        dlq = f"{queue}-dlq"
        seen: list[int] = []

        async def double(ctx: JobContext, data: Item) -> Doubled:
            seen.append(data.n)
            return Doubled(n=data.n * 2)

        bad = await self.enqueue_raw(backend, queue, {"n": "not a number"})
        good = await self.enqueue_raw(backend, queue, {"n": 2})
        await self.run_burst(
            backend,
            [self.processor(queue, double, dead_letter_queue=dlq, retry_options={"attempts": 3})],
        )
        assert seen == [2]
        assert (await self.job(backend, queue, bad)).state == JobState.DEAD_LETTERED
        good_info = await self.job(backend, queue, good)
        assert good_info.state == JobState.COMPLETED
        assert good_info.result == {"n": 4}
        [record] = await backend.dead_letters(dlq)
        assert record.reason == "invalid_payload"
        assert record.job_id == bad
        assert record.payload == {"n": "not a number"}
        assert record.attempts == 1

    # ------------------------------------------------------------------ retries

    async def test_attempts_count_the_first_try(self, backend: Backend, queue: str) -> None:
        dlq = f"{queue}-dlq"
        calls: list[int] = []

        async def always_fails(ctx: JobContext, data: Item) -> Doubled:
            calls.append(ctx.attempt)
            raise RuntimeError(f"failure {ctx.attempt}")

        job = await self.enqueue_raw(backend, queue, {"n": 1})
        retry = RetryOptions(attempts=3, backoff="fixed", delay=self.backoff_ms // 4)
        report = await self.run_burst(
            backend,
            [self.processor(queue, always_fails, retry_options=retry, dead_letter_queue=dlq)],
        )
        assert calls == [1, 2, 3]
        info = await self.job(backend, queue, job)
        assert info.state == JobState.DEAD_LETTERED
        assert info.attempts_made == 3
        assert info.error is not None and info.error.message == "failure 3"
        assert report.retried == 2 and report.dead_lettered == 1

    async def _retry_gaps(
        self, backend: Backend, queue: str, retry: RetryOptions, fail_times: int
    ) -> list[float]:
        started: list[float] = []

        async def flaky(ctx: JobContext, data: Item) -> Doubled:
            started.append(time.monotonic())
            if ctx.attempt <= fail_times:
                raise RuntimeError("not yet")
            return Doubled(n=data.n)

        job = await self.enqueue_raw(backend, queue, {"n": 5})
        await self.run_burst(backend, [self.processor(queue, flaky, retry_options=retry)])
        assert (await self.job(backend, queue, job)).state == JobState.COMPLETED
        assert len(started) == fail_times + 1
        return [b - a for a, b in itertools.pairwise(started)]

    async def test_fixed_backoff_waits_the_delay(self, backend: Backend, queue: str) -> None:
        retry = RetryOptions(attempts=3, backoff="fixed", delay=self.backoff_ms)
        gaps = await self._retry_gaps(backend, queue, retry, fail_times=2)
        slack = 0.005  # stored times are whole milliseconds
        assert all(gap >= self.backoff_ms / 1000 - slack for gap in gaps), gaps

    async def test_exponential_backoff_grows_by_factor(self, backend: Backend, queue: str) -> None:
        retry = RetryOptions(attempts=3, backoff="exponential", delay=self.backoff_ms, factor=3)
        gaps = await self._retry_gaps(backend, queue, retry, fail_times=2)
        slack = 0.005
        assert gaps[0] >= self.backoff_ms / 1000 - slack, gaps
        assert gaps[1] >= 3 * self.backoff_ms / 1000 - slack, gaps

    async def test_non_retryable_error_dead_letters_at_once(
        self, backend: Backend, queue: str
    ) -> None:
        dlq = f"{queue}-dlq"
        calls: list[int] = []

        async def refuses(ctx: JobContext, data: Item) -> Doubled:
            calls.append(ctx.attempt)
            raise NonRetryableError("this can never work")

        job = await self.enqueue_raw(backend, queue, {"n": 1})
        await self.run_burst(
            backend,
            [self.processor(queue, refuses, retry_options={"attempts": 5}, dead_letter_queue=dlq)],
        )
        assert calls == [1]
        assert (await self.job(backend, queue, job)).state == JobState.DEAD_LETTERED
        [record] = await backend.dead_letters(dlq)
        assert record.reason == "non_retryable"
        assert record.error.type == "NonRetryableError"

    # ------------------------------------------------------------------ dead-letter queue

    async def test_dead_letter_record_and_replay(self, backend: Backend, queue: str) -> None:
        self.require(backend, "dead_letter")
        dlq = f"{queue}-dlq"
        broken = True

        async def until_fixed(ctx: JobContext, data: Item) -> Doubled:
            if broken:
                raise RuntimeError("downstream is down")
            return Doubled(n=data.n * 2)

        processor = self.processor(
            queue,
            until_fixed,
            retry_options={"attempts": 2, "delay": 1},
            dead_letter_queue=dlq,
        )
        job = await self.enqueue_raw(backend, queue, {"n": 7})
        await self.run_burst(backend, [processor])
        assert (await self.job(backend, queue, job)).state == JobState.DEAD_LETTERED
        [record] = await backend.dead_letters(dlq)
        assert (record.queue, record.job_id, record.payload) == (queue, job, {"n": 7})
        assert record.attempts == 2
        assert record.reason == "attempts_exhausted"
        assert record.error.type == "RuntimeError"
        assert record.error.message == "downstream is down"
        assert "Traceback" in record.error.traceback
        assert record.failed_at_ms > 0
        counts = await backend.counts(queue)
        assert counts.dead_lettered == 1

        broken = False
        assert await backend.replay(dlq) == 1
        assert await backend.dead_letters(dlq) == []
        await self.run_burst(backend, [processor])
        info = await self.job(backend, queue, job)
        assert info.state == JobState.COMPLETED
        assert info.result == {"n": 14}

    async def test_replay_by_id_moves_only_that_record(self, backend: Backend, queue: str) -> None:
        self.require(backend, "dead_letter")
        dlq = f"{queue}-dlq"

        async def refuses(data: Item) -> Doubled:
            raise NonRetryableError("no")

        for n in (1, 2):
            await self.enqueue_raw(backend, queue, {"n": n})
        await self.run_burst(backend, [self.processor(queue, refuses, dead_letter_queue=dlq)])
        records = await backend.dead_letters(dlq)
        assert sorted(r.payload["n"] for r in records) == [1, 2]
        assert await backend.replay(dlq, [records[0].id]) == 1
        [left] = await backend.dead_letters(dlq)
        assert left.id == records[1].id
        assert (await backend.counts(queue)).waiting == 1

    async def test_without_dead_letter_queue_the_job_fails(
        self, backend: Backend, queue: str
    ) -> None:
        async def refuses(data: Item) -> Doubled:
            raise NonRetryableError("no")

        handle = await self.typed(queue).enqueue(Item(n=1), backend=backend)
        await self.run_burst(backend, [self.processor(queue, refuses)])
        assert await handle.status() == JobState.FAILED
        with pytest.raises(JobFailedError, match="NonRetryableError: no"):
            await handle.result(timeout=5)

    # ------------------------------------------------------------------ timeout

    async def test_timeout_fails_the_attempt(self, backend: Backend, queue: str) -> None:
        self.require(backend, "timeout")
        dlq = f"{queue}-dlq"
        calls: list[int] = []

        async def hangs(ctx: JobContext, data: Item) -> Doubled:
            calls.append(ctx.attempt)
            await asyncio.sleep(30)
            return Doubled(n=0)

        job = await self.enqueue_raw(backend, queue, {"n": 1})
        await self.run_burst(
            backend,
            [
                self.processor(
                    queue,
                    hangs,
                    timeout=100,
                    retry_options={"attempts": 2, "delay": 1},
                    dead_letter_queue=dlq,
                )
            ],
        )
        assert calls == [1, 2]  # a timeout is retried like any failure
        info = await self.job(backend, queue, job)
        assert info.state == JobState.DEAD_LETTERED
        assert info.error is not None and info.error.type == "JobTimeoutError"

    # ------------------------------------------------------------------ ordering and timing

    async def test_priority_one_is_served_first(self, backend: Backend, queue: str) -> None:
        self.require(backend, "priority")
        order: list[int] = []

        async def record(data: Item) -> Doubled:
            order.append(data.n)
            return Doubled(n=data.n)

        typed = self.typed(queue)
        for priority in (5, 1, 3, 1):
            await typed.enqueue(Item(n=priority), priority=priority, backend=backend)
        await self.run_burst(backend, [self.processor(queue, record, concurrency=1)])
        assert order == [1, 1, 3, 5]

    async def test_processor_default_priority_and_delay_apply(
        self, backend: Backend, queue: str
    ) -> None:
        self.require(backend, "delay")
        # Nothing waits for this delay: a long one keeps "still delayed" true on a slow machine.
        longest = backend.capabilities.max_delay_ms or 3_600_000
        options = ProcessorOptions(delay=min(3_600_000, longest))
        handle = await self.typed(queue, options).enqueue(Item(n=1), backend=backend)
        assert await handle.status() == JobState.DELAYED
        now = await self.typed(queue, options).enqueue(Item(n=2), delay=0, backend=backend)
        assert await now.status() == JobState.WAITING

    async def test_processor_default_priority_orders_jobs(
        self, backend: Backend, queue: str
    ) -> None:
        self.require(backend, "priority")
        order: list[int] = []

        async def record(data: Item) -> Doubled:
            order.append(data.n)
            return Doubled(n=data.n)

        typed = self.typed(queue, ProcessorOptions(priority=7))
        await typed.enqueue(Item(n=7), backend=backend)  # the processor's default: 7
        await typed.enqueue(Item(n=2), priority=2, backend=backend)
        await self.run_burst(backend, [self.processor(queue, record, concurrency=1)])
        assert order == [2, 7]

    async def test_delayed_job_waits(self, backend: Backend, queue: str) -> None:
        self.require(backend, "delay")

        async def double(data: Item) -> Doubled:
            return Doubled(n=data.n * 2)

        handle = await self.typed(queue).enqueue(Item(n=4), delay=self.delay_ms, backend=backend)
        assert await handle.status() == JobState.DELAYED
        assert (await backend.counts(queue)).delayed == 1
        await self.run_burst(backend, [self.processor(queue, double)])
        info = await handle.info()
        assert info is not None and info.state == JobState.COMPLETED
        assert info.finished_at_ms is not None
        assert info.finished_at_ms - info.enqueued_at_ms >= self.delay_ms

    async def test_job_id_is_idempotent(self, backend: Backend, queue: str) -> None:
        self.require(backend, "job_id")
        seen: list[int] = []

        async def record(data: Item) -> Doubled:
            seen.append(data.n)
            return Doubled(n=data.n)

        typed = self.typed(queue)
        first = await typed.enqueue(Item(n=1), job_id="order-42", backend=backend)
        second = await typed.enqueue(Item(n=2), job_id="order-42", backend=backend)
        assert first.id == second.id == "order-42"
        assert (await backend.counts(queue)).waiting == 1
        await self.run_burst(backend, [self.processor(queue, record)])
        assert seen == [1]
        again = await typed.enqueue(Item(n=3), job_id="order-42", backend=backend)
        assert again.id == "order-42"
        assert await again.status() == JobState.COMPLETED  # still the first job, not a new one

    async def test_repeat_every_runs_on_schedule_up_to_limit(
        self, backend: Backend, queue: str
    ) -> None:
        self.require(backend, "cron")
        seen: list[int] = []

        async def record(data: Item) -> Doubled:
            seen.append(data.n)
            return Doubled(n=data.n)

        processor = self.processor(queue, record)
        repeat = Repeat(every=1000, limit=2)
        await self.typed(queue).enqueue(Item(n=9), repeat=repeat, backend=backend)
        await self.run_burst(backend, [processor])  # the first run is immediate
        assert seen == [9]
        assert (await backend.counts(queue)).delayed == 1  # the next run is scheduled
        await asyncio.sleep(1.1)
        await self.run_burst(backend, [processor])
        assert seen == [9, 9]
        counts = await backend.counts(queue)
        assert (counts.waiting, counts.delayed, counts.completed) == (0, 0, 2)  # limit reached

    async def test_repeat_cron_waits_for_its_time_and_is_not_duplicated(
        self, backend: Backend, queue: str
    ) -> None:
        self.require(backend, "cron")
        typed = self.typed(queue)
        repeat = Repeat(cron="0 3 1 1 *")  # 03:00 UTC on January 1st
        first = await typed.enqueue(Item(n=1), repeat=repeat, backend=backend)
        second = await typed.enqueue(Item(n=1), repeat=repeat, backend=backend)
        assert first.id == second.id
        assert await first.status() == JobState.DELAYED
        counts = await backend.counts(queue)
        assert (counts.waiting, counts.delayed) == (0, 1)
        # The same cron with another payload is another schedule (EnqueueRequest.schedule_key).
        other = await typed.enqueue(Item(n=2), repeat=repeat, backend=backend)
        assert other.id != first.id
        counts = await backend.counts(queue)
        assert (counts.waiting, counts.delayed) == (0, 2)

    # ------------------------------------------------------------------ stalled jobs

    async def test_stalled_job_is_recovered(self, backend: Backend, queue: str) -> None:
        self.require(backend, "stalled_recovery")
        seen: list[int] = []
        stalled: list[JobEvent] = []

        async def record(data: Item) -> Doubled:
            seen.append(data.n)
            return Doubled(n=data.n)

        job = await self.enqueue_raw(backend, queue, {"n": 3})
        assert await self.abandon(backend, queue) == job
        options = self.worker_options([self.processor(queue, record, max_stalled_count=1)])
        options.events.subscribe("stalled", stalled.append)
        report = await asyncio.wait_for(backend.run_worker(options), self.run_timeout_s)
        assert seen == [3]
        assert report.stalled == 1
        assert [e.job_id for e in stalled] == [job]
        info = await self.job(backend, queue, job)
        assert info.state == JobState.COMPLETED
        assert info.attempts_made == 1  # the attempt the dead worker lost does not count

    async def test_stalled_past_max_stalled_count_dead_letters(
        self, backend: Backend, queue: str
    ) -> None:
        self.require(backend, "stalled_recovery")
        dlq = f"{queue}-dlq"

        async def never_called(data: Item) -> Doubled:
            raise AssertionError("a job past max_stalled_count must not run again")

        job = await self.enqueue_raw(backend, queue, {"n": 3})
        await self.abandon(backend, queue)
        processor = self.processor(queue, never_called, max_stalled_count=0, dead_letter_queue=dlq)
        await self.run_burst(backend, [processor])
        assert (await self.job(backend, queue, job)).state == JobState.DEAD_LETTERED
        [record] = await backend.dead_letters(dlq)
        assert record.reason == "stalled"

    # ------------------------------------------------------------------ progress, results

    async def test_progress_is_stored(self, backend: Backend, queue: str) -> None:
        self.require(backend, "progress")

        async def steps(ctx: JobContext, data: Item) -> Doubled:
            for done in range(1, data.n + 1):
                await ctx.progress.update(processed=done, total=data.n)
            return Doubled(n=data.n)

        handle = await self.typed(queue).enqueue(Item(n=4), backend=backend)
        await self.run_burst(backend, [self.processor(queue, steps)])
        assert await handle.progress() == {"processed": 4, "total": 4, "percentage": 100.0}

    async def test_sync_processor_runs_in_a_thread_with_progress(
        self, backend: Backend, queue: str
    ) -> None:
        self.require(backend, "progress")

        def blocking(ctx: JobContext, data: Item) -> Doubled:
            time.sleep(0.01)
            ctx.progress.update(percentage=50)
            return Doubled(n=data.n + 1)

        handle = await self.typed(queue).enqueue(Item(n=1), backend=backend)
        await self.run_burst(backend, [self.processor(queue, blocking)])
        assert await handle.result(timeout=5) == Doubled(n=2)
        assert await handle.progress() == {"percentage": 50}

    async def test_result_through_job_handle_is_typed(self, backend: Backend, queue: str) -> None:
        self.require(backend, "results")

        async def double(data: Item) -> Doubled:
            return Doubled(n=data.n * 2)

        handle: JobHandle[Doubled] = await self.typed(queue).enqueue(Item(n=21), backend=backend)
        assert await handle.status() == JobState.WAITING
        worker = asyncio.create_task(self.run_burst(backend, [self.processor(queue, double)]))
        result = await handle.result(timeout=self.run_timeout_s)
        await worker
        assert result == Doubled(n=42)
        assert isinstance(result, Doubled)
        assert await handle.status() == JobState.COMPLETED

    # ------------------------------------------------------------------ batch

    async def test_batch_gathers_and_retries_a_failed_item_alone(
        self, backend: Backend, queue: str
    ) -> None:
        self.require(backend, "batch")
        sizes: list[list[int]] = []
        failed_once: set[int] = set()

        async def handle_batch(ctx: JobContext, data: list[Item]) -> list[Doubled]:
            sizes.append([item.n for item in data])
            for index, item in enumerate(data):
                if item.n == 1 and item.n not in failed_once:
                    failed_once.add(item.n)
                    ctx.fail_item(index, "item 1 is flaky")
            return [Doubled(n=item.n * 2) for item in data]

        ids = [await self.enqueue_raw(backend, queue, {"n": n}) for n in range(4)]
        processor = self.processor(
            queue,
            handle_batch,
            batch=BatchOptions(size=4, timeout=200),
            retry_options={"attempts": 2, "delay": 1},
        )
        await self.run_burst(backend, [processor])
        assert sizes == [[0, 1, 2, 3], [1]]
        infos = [await self.job(backend, queue, job) for job in ids]
        assert [i.state for i in infos] == [JobState.COMPLETED] * 4
        assert [i.result for i in infos] == [{"n": 0}, {"n": 2}, {"n": 4}, {"n": 6}]
        assert [i.attempts_made for i in infos] == [1, 2, 1, 1]

    # ------------------------------------------------------------------ events

    async def test_events_are_limited_to_the_declared_ones(
        self, backend: Backend, queue: str
    ) -> None:
        self.require(backend, "events")

        async def positive(data: Item) -> Doubled:
            if data.n < 0:
                raise NonRetryableError("negative")
            return Doubled(n=data.n)

        other = f"{queue}-all"
        for name in (queue, other):
            await self.enqueue_raw(backend, name, {"n": 1})
            await self.enqueue_raw(backend, name, {"n": -1})
        seen: list[JobEvent] = []
        options = self.worker_options(
            [
                self.processor(queue, positive, events=["completed"]),
                # `dead_lettered` needs a dead-letter queue (without one the job just fails).
                self.processor(other, positive, dead_letter_queue=f"{other}-dlq"),
            ]
        )
        options.events.subscribe("*", seen.append)
        await asyncio.wait_for(backend.run_worker(options), self.run_timeout_s)
        assert {e.name for e in seen if e.queue == queue} == {"completed"}
        assert {e.name for e in seen if e.queue == other} >= {
            "completed",
            "failed",
            "dead_lettered",
        }

    # ------------------------------------------------------------------ monitor

    async def test_monitor_stats(self, backend: Backend, queue: str) -> None:
        self.require(backend, "metrics")
        dlq = f"{queue}-dlq"

        async def positive(data: Item) -> Doubled:
            if data.n < 0:
                raise NonRetryableError("negative")
            return Doubled(n=data.n)

        for n in (1, 2, 3, -1):
            await self.enqueue_raw(backend, queue, {"n": n})
        await self.run_burst(backend, [self.processor(queue, positive, dead_letter_queue=dlq)])
        await self.enqueue_raw(backend, queue, {"n": 4}, delay_ms=60_000)
        stats = await QueueMonitor(queues=[queue], backend=backend).get_stats(queue)
        assert (stats.completed, stats.dead_lettered, stats.failed) == (3, 1, 0)
        assert (stats.waiting, stats.active, stats.delayed, stats.queue_size) == (0, 0, 1, 1)
        assert stats.error_rate == 0.25
        assert stats.throughput_per_minute > 0
        assert stats.latency_p50_ms is not None and stats.latency_p95_ms is not None
        assert 0 <= stats.latency_p50_ms <= stats.latency_p95_ms

    # ------------------------------------------------------------------ concurrency

    async def test_max_concurrency_caps_active_jobs_across_workers(
        self, backend: Backend, queue: str
    ) -> None:
        self.require(backend, "global_concurrency")
        active = 0
        peak = 0

        async def slow(data: Item) -> Doubled:
            nonlocal active, peak
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0.05)
            active -= 1
            return Doubled(n=data.n)

        for n in range(8):
            await self.enqueue_raw(backend, queue, {"n": n})
        processors = [self.processor(queue, slow, concurrency=4, max_concurrency=2)]
        reports = await asyncio.gather(
            self.run_burst(backend, processors), self.run_burst(backend, processors)
        )
        assert sum(r.completed for r in reports) == 8
        assert peak <= 2

    async def test_concurrency_runs_jobs_side_by_side(self, backend: Backend, queue: str) -> None:
        active = 0
        peak = 0

        async def slow(data: Item) -> Doubled:
            nonlocal active, peak
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0.05)
            active -= 1
            return Doubled(n=data.n)

        for n in range(6):
            await self.enqueue_raw(backend, queue, {"n": n})
        await self.run_burst(backend, [self.processor(queue, slow, concurrency=3)])
        assert 1 < peak <= 3

    # ------------------------------------------------------------------ pinned verdicts
    # Every way a job fails for good gives the same dead-letter record and the same events on
    # every backend: `failed` (the attempt's error), then `dead_lettered` only when a
    # dead-letter queue took the job. A queue without one ends with `failed`.

    def verdict_events(self, options: WorkerOptions) -> list[JobEvent]:
        seen: list[JobEvent] = []
        options.events.subscribe("*", seen.append)
        return seen

    def final_events(self, events: list[JobEvent], job: str) -> list[tuple[str, int]]:
        return [(e.name, e.attempt) for e in events if e.job_id == job and e.name != "progress"]

    async def run_verdict(
        self, backend: Backend, processor: Processor
    ) -> tuple[WorkerReport, list[JobEvent]]:
        options = self.worker_options([processor])
        events = self.verdict_events(options)
        report = await asyncio.wait_for(backend.run_worker(options), self.run_timeout_s)
        return report, events

    async def check_final_state(
        self, backend: Backend, queue: str, job: str, state: JobState, error_type: str
    ) -> None:
        if not backend.capabilities.supports("results"):
            return  # no lookup by id on this backend
        info = await self.job(backend, queue, job)
        assert info.state == state
        assert info.error is not None and info.error.type == error_type

    async def test_verdict_stalled_record_and_events(self, backend: Backend, queue: str) -> None:
        self.require(backend, "stalled_recovery")
        self.require(backend, "dead_letter")
        dlq = f"{queue}-dlq"

        async def never_called(data: Item) -> Doubled:
            raise AssertionError("a job past max_stalled_count must not run again")

        job = await self.enqueue_raw(backend, queue, {"n": 3})
        await self.abandon(backend, queue)
        processor = self.processor(queue, never_called, max_stalled_count=0, dead_letter_queue=dlq)
        report, events = await self.run_verdict(backend, processor)
        [record] = await backend.dead_letters(dlq)
        expected = stalled_error(1, 0)
        assert (record.queue, record.job_id, record.payload) == (queue, job, {"n": 3})
        assert (record.attempts, record.reason) == (1, "stalled")
        assert (record.error.type, record.error.message) == (expected.type, expected.message)
        assert record.failed_at_ms > 0
        assert report.dead_lettered == 1
        assert self.final_events(events, job) == [
            ("stalled", 0),
            ("failed", 1),
            ("dead_lettered", 1),
        ]
        [dead] = [e for e in events if e.name == "dead_lettered"]
        assert dead.data == {"reason": "stalled"}
        [failed] = [e for e in events if e.name == "failed"]
        assert failed.data["error"]["message"] == expected.message
        await self.check_final_state(backend, queue, job, JobState.DEAD_LETTERED, "StalledJobError")

    async def test_verdict_stalled_without_dead_letter_queue_is_failed(
        self, backend: Backend, queue: str
    ) -> None:
        self.require(backend, "stalled_recovery")

        async def never_called(data: Item) -> Doubled:
            raise AssertionError("a job past max_stalled_count must not run again")

        job = await self.enqueue_raw(backend, queue, {"n": 3})
        await self.abandon(backend, queue)
        report, events = await self.run_verdict(
            backend, self.processor(queue, never_called, max_stalled_count=0)
        )
        assert self.final_events(events, job) == [("stalled", 0), ("failed", 1)]
        assert (report.failed, report.dead_lettered) == (1, 0)
        await self.check_final_state(backend, queue, job, JobState.FAILED, "StalledJobError")

    async def test_verdict_exhausted_record_and_events(self, backend: Backend, queue: str) -> None:
        self.require(backend, "dead_letter")
        dlq = f"{queue}-dlq"

        async def always_fails(data: Item) -> Doubled:
            raise RuntimeError(f"downstream refused {data.n}")

        job = await self.enqueue_raw(backend, queue, {"n": 4})
        processor = self.processor(
            queue, always_fails, retry_options={"attempts": 2, "delay": 1}, dead_letter_queue=dlq
        )
        report, events = await self.run_verdict(backend, processor)
        [record] = await backend.dead_letters(dlq)
        assert (record.queue, record.job_id, record.payload) == (queue, job, {"n": 4})
        assert (record.attempts, record.reason) == (2, "attempts_exhausted")
        assert (record.error.type, record.error.message) == ("RuntimeError", "downstream refused 4")
        assert self.final_events(events, job) == [
            ("failed", 1),
            ("retrying", 1),
            ("failed", 2),
            ("dead_lettered", 2),
        ]
        assert [e.data for e in events if e.name == "dead_lettered"] == [
            {"reason": "attempts_exhausted"}
        ]
        assert (report.retried, report.dead_lettered) == (1, 1)
        await self.check_final_state(backend, queue, job, JobState.DEAD_LETTERED, "RuntimeError")

    async def test_verdict_exhausted_without_dead_letter_queue_is_failed(
        self, backend: Backend, queue: str
    ) -> None:
        async def always_fails(data: Item) -> Doubled:
            raise RuntimeError("downstream refused")

        job = await self.enqueue_raw(backend, queue, {"n": 4})
        processor = self.processor(queue, always_fails, retry_options={"attempts": 2, "delay": 1})
        report, events = await self.run_verdict(backend, processor)
        assert self.final_events(events, job) == [("failed", 1), ("retrying", 1), ("failed", 2)]
        assert (report.failed, report.dead_lettered) == (1, 0)
        await self.check_final_state(backend, queue, job, JobState.FAILED, "RuntimeError")

    async def test_verdict_non_retryable_record_and_events(
        self, backend: Backend, queue: str
    ) -> None:
        self.require(backend, "dead_letter")
        dlq = f"{queue}-dlq"

        async def refuses(data: Item) -> Doubled:
            raise NonRetryableError("card declined")

        job = await self.enqueue_raw(backend, queue, {"n": 5})
        processor = self.processor(
            queue, refuses, retry_options={"attempts": 5}, dead_letter_queue=dlq
        )
        report, events = await self.run_verdict(backend, processor)
        [record] = await backend.dead_letters(dlq)
        assert (record.queue, record.job_id, record.payload) == (queue, job, {"n": 5})
        assert (record.attempts, record.reason) == (1, "non_retryable")
        assert (record.error.type, record.error.message) == ("NonRetryableError", "card declined")
        assert self.final_events(events, job) == [("failed", 1), ("dead_lettered", 1)]
        assert report.dead_lettered == 1
        await self.check_final_state(
            backend, queue, job, JobState.DEAD_LETTERED, "NonRetryableError"
        )

    async def test_verdict_non_retryable_without_dead_letter_queue_is_failed(
        self, backend: Backend, queue: str
    ) -> None:
        async def refuses(data: Item) -> Doubled:
            raise NonRetryableError("card declined")

        job = await self.enqueue_raw(backend, queue, {"n": 5})
        report, events = await self.run_verdict(backend, self.processor(queue, refuses))
        assert self.final_events(events, job) == [("failed", 1)]
        assert (report.failed, report.dead_lettered) == (1, 0)
        await self.check_final_state(backend, queue, job, JobState.FAILED, "NonRetryableError")

    async def test_verdict_invalid_payload_record_and_events(
        self, backend: Backend, queue: str
    ) -> None:
        self.require(backend, "dead_letter")
        dlq = f"{queue}-dlq"

        async def never_called(data: Item) -> Doubled:
            raise AssertionError("an invalid payload must not reach the processor")

        job = await self.enqueue_raw(backend, queue, {"n": "not a number"})
        processor = self.processor(
            queue, never_called, retry_options={"attempts": 3}, dead_letter_queue=dlq
        )
        report, events = await self.run_verdict(backend, processor)
        [record] = await backend.dead_letters(dlq)
        assert (record.queue, record.job_id) == (queue, job)
        assert record.payload == {"n": "not a number"}
        assert (record.attempts, record.reason) == (1, "invalid_payload")
        assert record.error.type == "ValidationError"
        assert "n" in record.error.message
        assert self.final_events(events, job) == [("failed", 1), ("dead_lettered", 1)]
        assert report.dead_lettered == 1
        await self.check_final_state(backend, queue, job, JobState.DEAD_LETTERED, "ValidationError")

    async def test_verdict_invalid_payload_without_dead_letter_queue_is_failed(
        self, backend: Backend, queue: str
    ) -> None:
        async def never_called(data: Item) -> Doubled:
            raise AssertionError("an invalid payload must not reach the processor")

        job = await self.enqueue_raw(backend, queue, {"n": "not a number"})
        report, events = await self.run_verdict(backend, self.processor(queue, never_called))
        assert self.final_events(events, job) == [("failed", 1)]
        assert (report.failed, report.dead_lettered) == (1, 0)
        await self.check_final_state(backend, queue, job, JobState.FAILED, "ValidationError")

    # ------------------------------------------------------------------ undecodable payloads
    # Payloads a backend can hold but the engine cannot read, injected straight into the
    # backend (as a producer outside pikkugen would): each must become ONE `invalid_payload`
    # dead letter holding its raw form, and the worker must go on (a burst worker ends).

    async def inject_raw(self, backend: Backend, queue: str, raw: str | bytes) -> str:
        """Store `raw` as a waiting job's payload, bypassing every pikkugen writer (raw SQL,
        raw Redis, a raw SQS send); return the job's id. Skip for a form the backend cannot
        hold at all (SQS refuses bytes that are not UTF-8)."""
        pytest.skip("override BackendConformance.inject_raw to store a raw payload")

    @pytest.mark.parametrize("raw", UNDECODABLE_PAYLOADS, ids=UNDECODABLE_IDS)
    async def test_undecodable_payload_is_one_dead_letter(
        self, backend: Backend, queue: str, raw: str | bytes
    ) -> None:
        self.require(backend, "dead_letter")
        dlq = f"{queue}-dlq"
        seen: list[int] = []

        async def double(data: Item) -> Doubled:
            seen.append(data.n)
            return Doubled(n=data.n * 2)

        bad = await self.inject_raw(backend, queue, raw)
        await self.enqueue_raw(backend, queue, {"n": 2})
        processor = self.processor(
            queue, double, dead_letter_queue=dlq, retry_options={"attempts": 3}
        )
        report, events = await self.run_verdict(backend, processor)  # ends: no loop on it
        assert seen == [2]
        # The same verdict, events and counts as any invalid payload.
        assert (report.completed, report.dead_lettered) == (1, 1)
        assert self.final_events(events, bad) == [("failed", 1), ("dead_lettered", 1)]
        records = await backend.dead_letters(dlq)
        assert [(r.job_id, r.reason) for r in records] == [(bad, "invalid_payload")]
        [record] = records
        assert record.payload_encoding in ("text", "base64")
        original = raw if isinstance(raw, bytes) else raw.encode("utf-8")
        assert raw_bytes(record.payload_encoding, record.payload) == original
        if record.payload_encoding == "text":
            assert record.payload == raw
        # Listing it again (and the record itself) is stable: nothing re-reads the poison.
        assert [r.id for r in await backend.dead_letters(dlq)] == [record.id]

    @pytest.mark.parametrize("raw", UNDECODABLE_PAYLOADS[:2], ids=UNDECODABLE_IDS[:2])
    async def test_undecodable_payload_without_dead_letter_queue_ends(
        self, backend: Backend, queue: str, raw: str | bytes
    ) -> None:
        seen: list[int] = []

        async def double(data: Item) -> Doubled:
            seen.append(data.n)
            return Doubled(n=data.n * 2)

        bad = await self.inject_raw(backend, queue, raw)
        await self.enqueue_raw(backend, queue, {"n": 3})
        report, events = await self.run_verdict(backend, self.processor(queue, double))
        assert seen == [3]
        assert (report.completed, report.failed) == (1, 1)
        assert self.final_events(events, bad) == [("failed", 1)]
        counts = await backend.counts(queue)
        assert counts.waiting + counts.active + counts.delayed == 0

    async def stored_raw(self, backend: Backend, queue: str, job_id: str) -> bytes:
        """The raw bytes a waiting job of `queue` holds as its payload, read past every
        pikkugen reader (raw SQL, a raw HGET, a raw SQS receive)."""
        pytest.skip("override BackendConformance.stored_raw to read a raw payload")

    @pytest.mark.parametrize("raw", UNDECODABLE_PAYLOADS, ids=UNDECODABLE_IDS)
    async def test_replay_of_an_undecodable_payload_writes_it_back_raw(
        self, backend: Backend, queue: str, raw: str | bytes
    ) -> None:
        """`dlq replay` of an `invalid_payload` record sends back the payload as it was (its
        text or bytes, `payloads.raw_original`), not its stored form as a JSON string, so a
        consumer fixed to read it gets the original job."""
        self.require(backend, "dead_letter")
        dlq = f"{queue}-dlq"

        async def double(data: Item) -> Doubled:
            return Doubled(n=data.n * 2)

        bad = await self.inject_raw(backend, queue, raw)
        await self.run_burst(backend, [self.processor(queue, double, dead_letter_queue=dlq)])
        [record] = await backend.dead_letters(dlq)
        assert record.job_id == bad
        assert await backend.replay(dlq) == 1
        assert await backend.dead_letters(dlq) == []
        original = raw if isinstance(raw, bytes) else raw.encode("utf-8")
        assert await self.stored_raw(backend, queue, bad) == original

    # ------------------------------------------------------------------ unstorable results

    # A processor that RETURNS what no strict JSON writer can store fails that attempt in the
    # engine (`result is not JSON-serialisable: …`), retried then dead-lettered like any
    # failure, instead of a settle that fails and brings the job back on every lease expiry.

    @pytest.mark.parametrize("result", UNSTORABLE_RESULTS, ids=UNSTORABLE_IDS)
    async def test_unstorable_result_fails_the_attempt(
        self, backend: Backend, queue: str, result: Any
    ) -> None:
        self.require(backend, "dead_letter")
        dlq = f"{queue}-dlq"
        calls: list[int] = []

        async def measures(data: Item) -> Measured:
            calls.append(data.n)
            return result  # type: ignore[no-any-return]

        async def returns(data: Item) -> Any:
            calls.append(data.n)
            return result

        job = await self.enqueue_raw(backend, queue, {"n": 5})
        processor = self.processor(
            queue,
            measures if isinstance(result, Measured) else returns,
            retry_options={"attempts": 2, "delay": 1},
            dead_letter_queue=dlq,
        )
        report, events = await self.run_verdict(backend, processor)  # ends: no loop on it
        assert calls == [5, 5]
        assert (report.completed, report.retried, report.dead_lettered) == (0, 1, 1)
        assert self.final_events(events, job) == [
            ("failed", 1),
            ("retrying", 1),
            ("failed", 2),
            ("dead_lettered", 2),
        ]
        [record] = await backend.dead_letters(dlq)
        assert (record.job_id, record.payload) == (job, {"n": 5})
        assert (record.attempts, record.reason) == (2, "attempts_exhausted")
        assert record.error.type == "UnstorableResultError"
        assert record.error.message.startswith("result is not JSON-serialisable: ")
        await self.check_final_state(
            backend, queue, job, JobState.DEAD_LETTERED, "UnstorableResultError"
        )

    # ------------------------------------------------------------------ dead-letter cycles

    async def test_a_dead_letter_record_is_never_dead_lettered_again(
        self, backend: Backend, queue: str
    ) -> None:
        """`a` dead-letters to `b` and `b` to `a`, both processors fail: the job is recorded
        once in `b`, the record fails there for good (`backend.dead_letter_target`) and does
        not bounce back to `a`; the burst worker ends."""
        self.require(backend, "dead_letter")
        a, b = f"{queue}-a", f"{queue}-b"
        calls: list[str] = []

        async def fails_a(data: Any) -> None:
            calls.append("a")
            raise NonRetryableError("a refuses")

        async def fails_b(data: Any) -> None:
            calls.append("b")
            raise NonRetryableError("b refuses")

        job = await self.enqueue_raw(backend, a, {"n": 1})
        report = await self.run_burst(
            backend,
            [
                self.processor(a, fails_a, dead_letter_queue=b),
                self.processor(b, fails_b, dead_letter_queue=a),
            ],
        )
        assert calls == ["a", "b"]
        assert (report.dead_lettered, report.failed) == (1, 1)
        assert await backend.dead_letters(a) == []
        assert await backend.dead_letters(b) == []  # the record ran, and failed there
        assert (await self.job(backend, a, job)).state == JobState.DEAD_LETTERED

    async def test_verdict_a_failing_dead_letter_record_emits_failed_only(
        self, backend: Backend, queue: str
    ) -> None:
        """A dead-letter record is never dead-lettered again, and its events say so: its job
        ends with `failed`, even though its processor names a dead-letter queue."""
        self.require(backend, "dead_letter")
        a, b = f"{queue}-a", f"{queue}-b"

        async def refuses(data: Any) -> None:
            raise NonRetryableError("refused")

        job = await self.enqueue_raw(backend, a, {"n": 1})
        options = self.worker_options(
            [
                self.processor(a, refuses, dead_letter_queue=b),
                self.processor(b, refuses, dead_letter_queue=a),
            ]
        )
        events = self.verdict_events(options)
        await asyncio.wait_for(backend.run_worker(options), self.run_timeout_s)
        on_a = [(e.name, e.attempt) for e in events if e.queue == a and e.job_id == job]
        assert on_a == [("failed", 1), ("dead_lettered", 1)]
        on_b = [(e.name, e.attempt) for e in events if e.queue == b]
        assert on_b == [("failed", 1)]  # the job that carried the record

    # ------------------------------------------------------------------ stored fields
    # Every reader is total: whatever a foreign writer puts in any field a backend stores for
    # a job (raw SQL, a raw HSET, a raw SQS send), that one job gets a verdict in bounded time
    # and its neighbours run as if nothing happened: no lease, sort, settle or stall check
    # raises for it, and no path redelivers it for ever.

    #: Generated values per stored field in the quick loop, and under `-m slow`.
    stored_field_examples: int = 4
    stored_field_examples_slow: int = 40
    #: How long one burst worker over a poisoned job and its neighbours may take.
    stored_field_bound_s: float = 20.0

    def stored_fields(self) -> Mapping[str, SearchStrategy[object]]:
        """Each field this backend stores for one job (its own name: a SQLite column, a BullMQ
        hash field, an SQS message attribute or the body…) with a hypothesis strategy of raw
        values a foreign writer could put there (the backend's raw types: str, bytes, int,
        float, None, …). Empty: the scenario skips."""
        return {}

    async def corrupt(
        self, backend: Backend, queue: str, job_id: str, field: str, value: object
    ) -> None:
        """Overwrite `field` of the job `job_id` (enqueued and waiting) with `value`, bypassing
        every pikkugen writer (raw SQL, raw HSET, a raw SQS send…); raise `StoredValueRefused`
        when the store's own types refuse the value (the write changed nothing)."""
        pytest.skip("override BackendConformance.corrupt to overwrite a stored field")

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """One test per stored field the backend declares (`stored_fields`)."""
        if "stored_field" not in metafunc.fixturenames:
            return
        names = sorted(self.stored_fields())
        if not names:
            skip = pytest.mark.skip(reason="the backend declares no stored_fields()")
            metafunc.parametrize("stored_field", [pytest.param("", marks=skip, id="none")])
            return
        metafunc.parametrize("stored_field", names)

    async def test_any_value_in_any_stored_field_gets_a_verdict(
        self, backend: Backend, stored_field: str
    ) -> None:
        """The cases found by hand (`NAMED_STORED_VALUES`), then generated values: one job
        among neighbours gets the value; the burst worker ends within `stored_field_bound_s`,
        every neighbour completes exactly once, and the poisoned job ends with one verdict."""
        for _, value in NAMED_STORED_VALUES.get(stored_field, []):
            await self.poison_one(backend, stored_field, value, named=True)
        await self.stored_field_property(backend, stored_field, self.stored_field_examples)

    @pytest.mark.slow
    async def test_many_values_in_any_stored_field_get_a_verdict(
        self, backend: Backend, stored_field: str
    ) -> None:
        await self.stored_field_property(backend, stored_field, self.stored_field_examples_slow)

    async def stored_field_property(self, backend: Backend, field: str, examples: int) -> None:
        """Drive hypothesis from this async scenario: `@given` runs a sync function in a
        thread, and each example runs on the scenario's own loop (where the backend lives),
        each in fresh queues."""
        from hypothesis import HealthCheck, Phase, given, settings

        strategy = self.stored_fields()[field]
        loop = asyncio.get_running_loop()

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            # a failing example may be a hang: report it as found rather than shrink for long
            phases=(Phase.explicit, Phase.generate),
            suppress_health_check=[
                HealthCheck.function_scoped_fixture,
                HealthCheck.too_slow,
                HealthCheck.data_too_large,
            ],
        )
        @given(value=strategy)
        def any_value(value: object) -> None:
            poisoned = self.poison_one(backend, field, value, named=False)
            asyncio.run_coroutine_threadsafe(poisoned, loop).result()

        await asyncio.to_thread(any_value)

    async def poison_one(self, backend: Backend, field: str, value: object, *, named: bool) -> None:
        """One example: neighbours on both sides of the poisoned job, all leased together."""
        queue = f"conf-{uuid.uuid4().hex[:12]}"
        dlq = f"{queue}-dlq"
        seen: list[str] = []

        async def double(ctx: JobContext, data: Item) -> Doubled:
            seen.append(ctx.job_id)
            return Doubled(n=data.n * 2)

        neighbours = [await self.enqueue_raw(backend, queue, {"n": n}) for n in (1, 2)]
        poisoned = await self.enqueue_raw(backend, queue, {"n": 0})
        neighbours += [await self.enqueue_raw(backend, queue, {"n": n}) for n in (3, 4)]
        try:
            await self.corrupt(backend, queue, poisoned, field, value)
        except StoredValueRefused:
            neighbours.append(poisoned)  # nothing was stored: an ordinary job
        processor = self.processor(
            queue,
            double,
            concurrency=8,
            dead_letter_queue=dlq,
            retry_options={"attempts": 2, "delay": 1},
        )
        case = f"{field} = {value!r}"
        try:
            report = await asyncio.wait_for(
                backend.run_worker(self.worker_options([processor])), self.stored_field_bound_s
            )
        except TimeoutError:
            raise AssertionError(
                f"{case}: the burst worker did not end within {self.stored_field_bound_s} s"
            ) from None
        runs = Counter(seen)
        for job in neighbours:
            assert runs.pop(job, 0) == 1, f"{case}: neighbour {job} ran {runs.get(job)} times"
            if backend.capabilities.supports("results"):
                info = await self.job(backend, queue, job)
                assert info.state == JobState.COMPLETED, f"{case}: neighbour {job}: {info}"
        records = await backend.dead_letters(dlq)
        assert not [r for r in records if r.job_id in neighbours], f"{case}: {records}"
        assert sum(runs.values()) <= 1, f"{case}: the poisoned job ran {runs}"
        ran = sum(runs.values()) == 1
        if poisoned in neighbours:  # the store refused the value (`StoredValueRefused`)
            assert report.completed == len(neighbours) and not records, f"{case}: {report}"
            return
        failed = await self._failed_naming(backend, queue, poisoned, field)
        assert len(records) + ran + failed == 1, (
            f"{case}: the poisoned job must end once: ran={ran}, records={records},"
            f" failed={failed}, report={report}"
        )
        if records:
            self._names_the_field(records[0], field, case)
        if named:
            assert not ran, f"{case}: ran as if it were a valid job"
        assert report.completed == len(neighbours) + ran, f"{case}: {report}"
        assert report.dead_lettered + report.failed == 1 - ran, f"{case}: {report}"
        counts = await backend.counts(queue)
        assert counts.waiting + counts.active + counts.delayed == 0, f"{case}: {counts}"

    def _names_the_field(self, record: DeadLetterRecord, field: str, case: str) -> None:
        assert record.reason in ("invalid_record", "invalid_payload"), f"{case}: {record}"
        if record.reason == "invalid_record":
            assert field in record.error.message, f"{case}: {record.error}"

    async def _failed_naming(self, backend: Backend, queue: str, job_id: str, field: str) -> bool:
        """Whether the poisoned job failed for good (its record could not be stored), its
        error naming the field; only where a job can be looked up by id."""
        if not backend.capabilities.supports("results"):
            return False
        info = await backend.get_job(queue, job_id)
        if info is None or info.state != JobState.FAILED:
            return False
        assert info.error is not None and field in info.error.message, info
        return True
