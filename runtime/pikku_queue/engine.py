"""The engine: one delivery in, one outcome out.

Every backend delivers jobs differently (a worker loop pulls from SQLite or Redis, Lambda and
Cloudflare push a batch), but what happens to a delivered job is the same everywhere: validate
the payload, run the processor under its timeout, and decide Completed, Retry or DeadLetter.
Keeping that decision here is what gives every backend the same semantics; adapters only
translate the verdict into their backend's verbs.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pydantic_core import PydanticSerializationError

from pikku_queue import observe
from pikku_queue.context import CancelSignal, JobContext, Progress, ProgressSink
from pikku_queue.errors import JobTimeoutError, NonRetryableError
from pikku_queue.events import EventBus, JobEvent

# The values the engine takes and returns live below it; their old home re-exports them.
from pikku_queue.outcomes import Cancelled as Cancelled
from pikku_queue.outcomes import Completed as Completed
from pikku_queue.outcomes import DeadLetter as DeadLetter
from pikku_queue.outcomes import DeadLetterReason as DeadLetterReason
from pikku_queue.outcomes import Delivery as Delivery
from pikku_queue.outcomes import ErrorInfo as ErrorInfo
from pikku_queue.outcomes import Outcome as Outcome
from pikku_queue.outcomes import Retry as Retry
from pikku_queue.outcomes import cancelled_error
from pikku_queue.outcomes import stalled_error as stalled_error
from pikku_queue.payloads import UnstorableResultError, check_result
from pikku_queue.processor import Processor as Processor
from pikku_queue.records import dead_letter_target

logger = logging.getLogger("pikku_queue")

#: Sync processors run on this pool, not on asyncio's default one: that pool holds
#: min(32, CPUs + 4) threads (6 on a 2-core machine), so `concurrency=50` would run 6 jobs at
#: once and the rest would wait in its queue with their timeout already running. Threads are
#: started only when needed, so the pool grows to the number of sync jobs running at once,
#: which the workers' `concurrency` bounds.
_SYNC_POOL = ThreadPoolExecutor(max_workers=10_000, thread_name_prefix="pikku-sync")


class _Unreadable(Exception):
    """`Engine._validate` for a delivery whose payload (`invalid_payload`) or another stored
    field (`invalid_record`) its backend could not read."""

    def __init__(self, error: ErrorInfo, reason: DeadLetterReason) -> None:
        super().__init__(error.message)
        self.error = error
        self.reason: DeadLetterReason = reason


class _CancelledByRequest(Exception):
    """`Engine._call` for an async processor whose task a cancel request cancelled."""


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


async def _inline(func: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    return func(*args)


def _jittered(delay_ms: int, jitter: float, rng: random.Random) -> int:
    if jitter <= 0 or delay_ms <= 0:
        return delay_ms
    spread = delay_ms * jitter
    return max(0, int(delay_ms - spread + rng.random() * spread))


@dataclass
class Engine:
    """Runs deliveries of one processor and returns outcomes. One per queue per worker."""

    processor: Processor
    services: Any = None
    events: EventBus = field(default_factory=EventBus)
    rng: random.Random = field(default_factory=random.Random)
    log: logging.Logger = logger
    #: Caps the attempt timeout from outside (Lambda's remaining time), in ms.
    timeout_cap_ms: Callable[[], int | None] = lambda: None
    #: False where no thread can be started (a Python Worker on Pyodide): a sync processor
    #: then runs on the event loop itself, blocking it, and its timeout cannot interrupt it.
    threads: bool = True

    def retry_delay_ms(self, failed_attempt: int) -> int:
        retry = self.processor.options.retry_options
        return _jittered(retry.base_delay_ms(failed_attempt), retry.jitter, self.rng)

    def _timeout_s(self) -> float | None:
        limits = [t for t in (self.processor.options.timeout, self.timeout_cap_ms()) if t]
        return min(limits) / 1000 if limits else None

    def _failure(self, delivery: Delivery, exc: BaseException) -> Outcome:
        error = ErrorInfo.from_exception(exc)
        if isinstance(exc, NonRetryableError):
            return DeadLetter("non_retryable", error)
        if delivery.attempt >= self.processor.options.retry_options.attempts:
            return DeadLetter("attempts_exhausted", error)
        return Retry(self.retry_delay_ms(delivery.attempt), error)

    def failure_outcome(self, delivery: Delivery, exc: BaseException) -> Outcome:
        """The failure rule (Retry with backoff; DeadLetter at the last attempt or for
        `NonRetryableError`) for an error caught outside `run`, e.g. one that escaped it, so a
        caller never has to invent its own retry policy."""
        return self._failure(delivery, exc)

    def _context(
        self,
        delivery: Delivery,
        job_ids: tuple[str, ...] = (),
        cancel: CancelSignal | None = None,
    ) -> JobContext:
        return JobContext(
            cancel_signal=cancel if cancel is not None else CancelSignal(),
            job_id=delivery.job_id,
            queue=delivery.queue,
            attempt=delivery.attempt,
            logger=self.log.getChild(self.processor.name),
            services=self.services,
            progress=Progress(self._progress_sink(delivery), asyncio.get_running_loop()),
            job_ids=job_ids,
        )

    def _progress_sink(self, delivery: Delivery) -> ProgressSink:
        loop = asyncio.get_running_loop()

        def sink(data: dict[str, Any]) -> Any:
            event = {"progress": data}
            if _running_loop() is loop:
                self._emit("progress", delivery, event)
            else:
                # A sync processor's thread: callbacks run on the worker's loop, like every
                # other event, so they may touch asyncio objects (queued before the job ends).
                loop.call_soon_threadsafe(self._emit, "progress", delivery, event)
            return delivery.progress(data) if delivery.progress is not None else None

        return sink

    async def _call(self, ctx: JobContext, data: Any, cancel: CancelSignal | None = None) -> Any:
        proc = self.processor
        args = (ctx, data) if proc.takes_context else (data,)
        if proc.is_async:
            call: Any = proc.func(*args)
            if cancel is not None:
                return await self._cancellable(ctx, call, cancel)
        elif not self.threads:
            call = _inline(proc.func, args)
        else:
            # Like asyncio.to_thread (the context variables go along), on our own pool.
            run = functools.partial(contextvars.copy_context().run, proc.func, *args)
            call = asyncio.get_running_loop().run_in_executor(_SYNC_POOL, run)
        timeout = self._timeout_s()
        if timeout is None:
            return await call
        return await self._wait_for(ctx, call, timeout)

    async def _cancellable(self, ctx: JobContext, call: Any, cancel: CancelSignal) -> Any:
        """Await an async processor's call so that a stop request (`JobHandle.cancel`)
        cancels it: the request expires an `asyncio.timeout` scope at once, so the processor
        sees CancelledError at its await and asyncio itself tells that cancel from this task
        being cancelled (a worker's shutdown, which goes on as CancelledError). No task is
        created per job for it."""
        scope = asyncio.timeout(None)
        loop = asyncio.get_running_loop()

        def stop() -> None:
            with contextlib.suppress(RuntimeError):  # the scope has ended meanwhile
                scope.reschedule(loop.time())

        timeout = self._timeout_s()
        try:
            async with scope:
                forget = cancel.on_request(stop)
                try:
                    if timeout is None:
                        return await call
                    return await self._wait_for(ctx, call, timeout)
                finally:
                    forget()
        except TimeoutError:
            if scope.expired():
                raise _CancelledByRequest from None
            raise

    async def _wait_for(self, ctx: JobContext, call: Any, timeout: float) -> Any:
        try:
            return await asyncio.wait_for(call, timeout)
        except TimeoutError:
            raise JobTimeoutError(
                f"attempt {ctx.attempt} of job {ctx.job_id} exceeded the timeout of "
                f"{int(timeout * 1000)} ms"
            ) from None

    def _dump_result(self, raw: Any) -> Any:
        """The JSON value of a processor's result, or an error that fails the attempt: not
        its output type, or not storable by a backend's strict JSON writer (NaN, Infinity, a
        lone surrogate, a value with no JSON form). Checked here, before the verdict is
        Completed, so the attempt follows the retry/dead-letter rule instead of a settle
        that fails on every lease expiry, for ever."""
        adapter = self.processor.output_adapter
        value = adapter.validate_python(raw)
        try:
            result = adapter.dump_python(value, mode="json")
        except PydanticSerializationError as exc:
            raise UnstorableResultError(f"result is not JSON-serialisable: {exc}") from None
        check_result(result)
        return result

    def _validate(self, delivery: Delivery) -> Any:
        if delivery.record_error is not None:
            raise _Unreadable(delivery.record_error, "invalid_record")
        if delivery.payload_error is not None:
            raise _Unreadable(delivery.payload_error, "invalid_payload")
        return self.processor.input_adapter.validate_python(delivery.payload)

    def _invalid(self, delivery: Delivery, exc: Exception) -> DeadLetter:
        if isinstance(exc, _Unreadable):
            outcome = DeadLetter(exc.reason, exc.error)
        else:
            outcome = DeadLetter("invalid_payload", ErrorInfo.from_exception(exc))
        watch = observe.attempt(self.processor, (delivery,))
        self._report(delivery, outcome)
        if watch is not None:
            watch.done(((delivery, outcome),), 0.0)
        return outcome

    async def run(self, delivery: Delivery, cancel: CancelSignal | None = None) -> Outcome:
        """Run one job and decide what happens to it. Never raises for a processor's error.

        With `cancel`, a stop requested while the attempt runs (`JobHandle.cancel`) cancels
        an async processor and sets `ctx.cancelled` for a sync one; the attempt then ends
        `Cancelled`, whatever the processor returns or raises (one requested before it starts:
        the processor is not called)."""
        if self.processor.is_batch:
            return (await self.run_batch([delivery]))[0]
        try:
            data = self._validate(delivery)
        except Exception as exc:  # a validator may raise anything: still this payload's fault
            return self._invalid(delivery, exc)
        if cancel is not None and cancel.requested:
            outcome: Outcome = Cancelled(cancelled_error(delivery.attempt))
            self._report(delivery, outcome)
            return outcome
        watch = observe.attempt(self.processor, (delivery,))
        started = time.monotonic()
        ctx = self._context(delivery, cancel=cancel)
        try:
            result = self._dump_result(await self._call(ctx, data, cancel))
        except _CancelledByRequest:
            outcome = Cancelled(cancelled_error(delivery.attempt))
        except Exception as exc:
            outcome = self._failure(delivery, exc)
        except BaseException:  # cancelled (a shutdown): the attempt ends without an outcome
            if watch is not None:
                watch.done((), time.monotonic() - started)
            raise
        else:
            outcome = Completed(result)
        if cancel is not None and cancel.requested and not isinstance(outcome, Cancelled):
            outcome = Cancelled(cancelled_error(delivery.attempt))  # it stopped as asked
        elapsed = time.monotonic() - started
        self._report(delivery, outcome, elapsed)
        if watch is not None:
            watch.done(((delivery, outcome),), elapsed)
        return outcome

    async def run_batch(self, deliveries: Sequence[Delivery]) -> list[Outcome]:
        """Run a batch processor once over the valid items; each item gets its own outcome."""
        outcomes: dict[int, Outcome] = {}
        valid: list[tuple[int, Delivery, Any]] = []
        for index, delivery in enumerate(deliveries):
            try:
                valid.append((index, delivery, self._validate(delivery)))
            except Exception as exc:
                outcomes[index] = self._invalid(delivery, exc)
        if valid:
            watch = observe.attempt(self.processor, [d for _, d, _ in valid])
            started = time.monotonic()
            first = valid[0][1]
            ctx = self._context(first, tuple(d.job_id for _, d, _ in valid))
            try:
                results = await self._call(ctx, [data for _, _, data in valid])
                if not isinstance(results, list) or len(results) != len(valid):
                    got = len(results) if isinstance(results, list) else type(results).__name__
                    raise TypeError(
                        f"batch processor returned {got} results for {len(valid)} items"
                    )
            except Exception as exc:
                for index, delivery, _ in valid:
                    outcomes[index] = self._failure(delivery, exc)
            except BaseException:  # cancelled (a shutdown): no outcome
                if watch is not None:
                    watch.done((), time.monotonic() - started)
                raise
            else:
                for position, (index, delivery, _) in enumerate(valid):
                    failed = ctx.failed_items.get(position)
                    if failed is not None:
                        outcomes[index] = self._failure(delivery, failed)
                        continue
                    try:
                        outcomes[index] = Completed(self._dump_result(results[position]))
                    except Exception as exc:
                        outcomes[index] = self._failure(delivery, exc)
            elapsed = time.monotonic() - started
            for index, delivery, _ in valid:
                self._report(delivery, outcomes[index], elapsed)
            if watch is not None:
                watch.done([(d, outcomes[i]) for i, d, _ in valid], elapsed)
        return [outcomes[i] for i in range(len(deliveries))]

    def _report(self, delivery: Delivery, outcome: Outcome, elapsed_s: float = 0.0) -> None:
        if isinstance(outcome, Completed):
            self._emit("completed", delivery, {"result": outcome.result, "elapsed_s": elapsed_s})
            return
        if isinstance(outcome, Cancelled):
            self.log.info(
                "%s job %s attempt %d cancelled", delivery.queue, delivery.job_id, delivery.attempt
            )
            self._emit("cancelled", delivery, {"elapsed_s": elapsed_s})
            return
        self.log.warning(
            "%s job %s attempt %d failed: %s: %s",
            delivery.queue,
            delivery.job_id,
            delivery.attempt,
            outcome.error.type,
            outcome.error.message,
        )
        self._emit("failed", delivery, {"error": outcome.error.as_dict()})
        if isinstance(outcome, Retry):
            self._emit("retrying", delivery, {"delay_ms": outcome.delay_ms})
        elif dead_letter_target(delivery.payload, self.processor.options.dead_letter_queue):
            # Without a dead-letter queue nothing was dead-lettered: `failed` was the last word
            # (so too for a dead-letter record, which is never dead-lettered again).
            self._emit("dead_lettered", delivery, {"reason": outcome.reason})

    def report_verdict(self, delivery: Delivery, outcome: DeadLetter) -> None:
        """Log and emit the events of a verdict a backend reached without `run` (a job that
        stalled past `max_stalled_count`, a payload it could not even load), exactly as `run`
        emits them: `failed`, then `dead_lettered` when a dead-letter queue took the job."""
        self._report(delivery, outcome)

    def _emit(self, name: str, delivery: Delivery, data: dict[str, Any]) -> None:
        if name in self.processor.options.events:
            self.events.emit(
                JobEvent(
                    name=name,
                    queue=delivery.queue,
                    job_id=delivery.job_id,
                    attempt=delivery.attempt,
                    data=data,
                )
            )
