"""The engine: one delivery in, one outcome out.

Every backend delivers jobs differently (a worker loop pulls from SQLite or Redis, Lambda and
Cloudflare push a batch), but what happens to a delivered job is the same everywhere: validate
the payload, run the processor under its timeout, and decide Completed, Retry or DeadLetter.
Keeping that decision here is what gives every backend the same semantics; adapters only
translate the verdict into their backend's verbs.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import random
import time
import traceback
import typing
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import TypeAdapter
from pydantic_core import PydanticSerializationError

from pikku_queue import observe
from pikku_queue.context import JobContext, Progress, ProgressSink
from pikku_queue.declarations import ProcessorSpec
from pikku_queue.errors import JobTimeoutError, NonRetryableError
from pikku_queue.events import EventBus, JobEvent
from pikku_queue.options import ProcessorOptions

logger = logging.getLogger("pikku_queue")

#: Sync processors run on this pool, not on asyncio's default one: that pool holds
#: min(32, CPUs + 4) threads (6 on a 2-core machine), so `concurrency=50` would run 6 jobs at
#: once and the rest would wait in its queue with their timeout already running. Threads are
#: started only when needed, so the pool grows to the number of sync jobs running at once,
#: which the workers' `concurrency` bounds.
_SYNC_POOL = ThreadPoolExecutor(max_workers=10_000, thread_name_prefix="pikku-sync")


@dataclass(frozen=True)
class Delivery:
    """One job handed to the engine by a backend."""

    job_id: str
    queue: str
    payload: Any  # decoded JSON
    attempt: int  # 1-based: the first try is attempt 1
    enqueued_at_ms: int
    progress: ProgressSink | None = None
    #: The W3C trace context the job was enqueued under (`traceparent`, `tracestate`), carried
    #: beside the payload by the backend; `pikku_queue.tracing` links the attempt to it.
    trace_context: Mapping[str, str] | None = None
    #: "json", or how `payload` holds a payload the backend's reader refused (`payloads`).
    payload_encoding: str = "json"
    #: Why the backend's reader refused the stored payload (`pikku_queue.payloads`): the
    #: engine dead-letters such a job as `invalid_payload` without running it, with the same
    #: log line, events and counts as any invalid payload, on every backend.
    payload_error: ErrorInfo | None = None


@dataclass(frozen=True)
class ErrorInfo:
    type: str
    message: str
    traceback: str = ""

    @classmethod
    def from_exception(cls, exc: BaseException) -> ErrorInfo:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return cls(type=type(exc).__name__, message=str(exc), traceback=text)

    def as_dict(self) -> dict[str, str]:
        return {"type": self.type, "message": self.message, "traceback": self.traceback}


class _Unreadable(Exception):
    """`Engine._validate` for a delivery whose payload its backend could not read."""

    def __init__(self, error: ErrorInfo) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass(frozen=True)
class Completed:
    result: Any  # JSON-ready (already dumped through the output type)
    kind: Literal["completed"] = "completed"


@dataclass(frozen=True)
class Retry:
    delay_ms: int
    error: ErrorInfo
    kind: Literal["retry"] = "retry"


DeadLetterReason = Literal["invalid_payload", "non_retryable", "attempts_exhausted", "stalled"]


@dataclass(frozen=True)
class DeadLetter:
    reason: DeadLetterReason
    error: ErrorInfo
    kind: Literal["dead_letter"] = "dead_letter"


Outcome = Completed | Retry | DeadLetter


def stalled_error(stalls: int, max_stalled_count: int) -> ErrorInfo:
    """The error of a job that stalled past `max_stalled_count`, the same text on every backend
    (SQLite counts expired leases, Redis BullMQ's stalled counter)."""
    return ErrorInfo(
        type="StalledJobError",
        message=(
            f"the job's lease expired {stalls} time(s) (its worker died or blocked);"
            f" max_stalled_count is {max_stalled_count}"
        ),
    )


def _dead_letter_target(payload: Any, options: ProcessorOptions) -> str | None:
    """Where a job that failed for good goes (`backend.dead_letter_target`, the one rule)."""
    from pikku_queue.backend import dead_letter_target  # backend imports this module

    return dead_letter_target(payload, options.dead_letter_queue)


def _payload_parameter(func: Callable[..., Any]) -> tuple[inspect.Parameter, bool]:
    """The payload parameter and whether a context parameter comes before it.

    Processors take `(ctx, data)` or just `(data)`.
    """
    params = [
        p
        for p in inspect.signature(func).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if len(params) == 2:
        return params[1], True
    if len(params) == 1:
        return params[0], False
    raise TypeError(
        f"processor {func.__qualname__} must take (ctx, data) or (data); "
        f"it takes {len(params)} positional parameters"
    )


def _unwrap_list(annotation: Any, what: str, func: Callable[..., Any]) -> Any:
    if typing.get_origin(annotation) in (list, Sequence) and typing.get_args(annotation):
        return typing.get_args(annotation)[0]
    raise TypeError(f"batch processor {func.__qualname__} must take and return lists ({what})")


@dataclass(frozen=True)
class Processor:
    """A processor resolved for running: its function, options and type adapters."""

    name: str
    func: Callable[..., Any]
    options: ProcessorOptions
    input_adapter: TypeAdapter[Any]
    output_adapter: TypeAdapter[Any]
    takes_context: bool
    is_async: bool

    @property
    def is_batch(self) -> bool:
        return self.options.batch is not None

    @classmethod
    def from_spec(cls, spec: ProcessorSpec) -> Processor:
        return cls.from_function(spec.name, spec.func, spec.options)

    @classmethod
    def from_function(
        cls, name: str, func: Callable[..., Any], options: ProcessorOptions | None = None
    ) -> Processor:
        options = options or ProcessorOptions()
        hints = typing.get_type_hints(func)
        param, takes_context = _payload_parameter(func)
        input_type = hints.get(param.name, Any)
        output_type = hints.get("return", Any)
        if options.batch is not None:
            input_type = _unwrap_list(input_type, "input", func)
            output_type = _unwrap_list(output_type, "output", func)
        return cls(
            name=name,
            func=func,
            options=options,
            input_adapter=TypeAdapter(input_type),
            output_adapter=TypeAdapter(output_type),
            takes_context=takes_context,
            is_async=inspect.iscoroutinefunction(func),
        )


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

    def _context(self, delivery: Delivery, job_ids: tuple[str, ...] = ()) -> JobContext:
        return JobContext(
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

    async def _call(self, ctx: JobContext, data: Any) -> Any:
        proc = self.processor
        args = (ctx, data) if proc.takes_context else (data,)
        if proc.is_async:
            call: Any = proc.func(*args)
        elif not self.threads:
            call = _inline(proc.func, args)
        else:
            # Like asyncio.to_thread (the context variables go along), on our own pool.
            run = functools.partial(contextvars.copy_context().run, proc.func, *args)
            call = asyncio.get_running_loop().run_in_executor(_SYNC_POOL, run)
        timeout = self._timeout_s()
        if timeout is None:
            return await call
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
        from pikku_queue.payloads import UnstorableResultError, check_result  # imports us

        adapter = self.processor.output_adapter
        value = adapter.validate_python(raw)
        try:
            result = adapter.dump_python(value, mode="json")
        except PydanticSerializationError as exc:
            raise UnstorableResultError(f"result is not JSON-serialisable: {exc}") from None
        check_result(result)
        return result

    def _validate(self, delivery: Delivery) -> Any:
        if delivery.payload_error is not None:
            raise _Unreadable(delivery.payload_error)
        return self.processor.input_adapter.validate_python(delivery.payload)

    def _invalid(self, delivery: Delivery, exc: Exception) -> DeadLetter:
        error = exc.error if isinstance(exc, _Unreadable) else ErrorInfo.from_exception(exc)
        outcome = DeadLetter("invalid_payload", error)
        watch = observe.attempt(self.processor, (delivery,))
        self._report(delivery, outcome)
        if watch is not None:
            watch.done(((delivery, outcome),), 0.0)
        return outcome

    async def run(self, delivery: Delivery) -> Outcome:
        """Run one job and decide what happens to it. Never raises for a processor's error."""
        if self.processor.is_batch:
            return (await self.run_batch([delivery]))[0]
        try:
            data = self._validate(delivery)
        except Exception as exc:  # a validator may raise anything: still this payload's fault
            return self._invalid(delivery, exc)
        watch = observe.attempt(self.processor, (delivery,))
        started = time.monotonic()
        ctx = self._context(delivery)
        try:
            result = self._dump_result(await self._call(ctx, data))
        except Exception as exc:
            outcome = self._failure(delivery, exc)
        except BaseException:  # cancelled (a shutdown): the attempt ends without an outcome
            if watch is not None:
                watch.done((), time.monotonic() - started)
            raise
        else:
            outcome = Completed(result)
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
        elif _dead_letter_target(delivery.payload, self.processor.options) is not None:
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
