"""Test helpers: run a processor through the real engine and worker, without sleeping.

`run_queue_processor(func, data)` enqueues `data` on a private memory backend with a virtual
clock and runs a burst worker until the job is final, so retries with a one-minute backoff
finish at once while attempt counting, timeouts, validation and dead-lettering follow exactly
the production rules. It returns what happened; nothing here is a mock of the engine.

Use the fixtures with `pytest_plugins = ["pikku_queue.testing"]` in a conftest.py:
`memory_backend` (a fresh MemoryBackend on a VirtualClock, the default backend for the test, so
the generated client and `queue_job` enqueue on it, never on the project's SQLite file) and
`virtual_clock`. `use_backend(backend)` does the same for a `with` block.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, overload

from pydantic import TypeAdapter, ValidationError

from pikku_queue import adapters
from pikku_queue.adapters.memory.backend import MemoryBackend
from pikku_queue.backend import Backend, WorkerOptions
from pikku_queue.client import run_sync
from pikku_queue.clock import VirtualClock
from pikku_queue.declarations import spec_of
from pikku_queue.events import JobEvent
from pikku_queue.options import ProcessorOptions, RetryOptions
from pikku_queue.outcomes import ErrorInfo
from pikku_queue.processor import Processor
from pikku_queue.records import DeadLetterRecord, EnqueueRequest, JobState

_ANY: TypeAdapter[Any] = TypeAdapter(Any)
Out = TypeVar("Out")


@contextmanager
def use_backend(backend: Backend) -> Iterator[Backend]:
    """`backend` is the process default (`set_default_backend`) inside the block, so the
    generated client, `queue_job` and anything the code under test enqueues use it instead of
    `$PIKKU_QUEUE_URL`, the project's configured backend or `.pikku/queue.db`; the previous
    default is back afterwards. A call's own `backend=` still wins."""
    previous = adapters.default_set()
    adapters.set_default(backend)
    try:
        yield backend
    finally:
        adapters.set_default(previous)


@dataclass(frozen=True)
class ProcessorRun(Generic[Out]):
    """What happened to a job run by `run_queue_processor`: generic in the processor's return
    type, so `run.output.message_id` is checked by mypy like the processor itself."""

    status: JobState
    #: How many times the processor was called for this job (batch: the most for any item).
    attempts: int
    #: The result, typed through the processor's return annotation (batch: one per item).
    #: None when the job did not complete (an `expect_failure` run: look at `error`).
    output: Out
    error: ErrorInfo | None
    progress: dict[str, Any] | None
    #: True when the job ended in the processor's dead-letter queue.
    dead_lettered: bool
    dead_letter: DeadLetterRecord | None = None
    job_ids: tuple[str, ...] = ()
    events: tuple[JobEvent, ...] = field(default_factory=tuple)

    @property
    def succeeded(self) -> bool:
        return self.status == JobState.COMPLETED


def _options_for(func: Callable[..., Any], max_retries: int | None) -> tuple[str, ProcessorOptions]:
    spec = spec_of(func)
    if spec is not None:
        name, options = spec.name, spec.options
    else:
        name = re.sub(r"[^A-Za-z0-9_.\-]", "-", func.__name__)[:80] or "queue"
        options = ProcessorOptions()
    if max_retries is not None:
        retry = options.retry_options.model_dump()
        retry["attempts"] = max_retries + 1
        options = options.model_copy(update={"retry_options": RetryOptions(**retry)})
    return name, options


def _payload(processor: Processor, item: Any) -> Any:
    # A payload the input type rejects is still sent (as plain JSON): the worker's validation
    # then dead-letters it, which is what a test of bad input wants to see.
    try:
        adapter = processor.input_adapter
        return adapter.dump_python(adapter.validate_python(item), mode="json")
    except ValidationError:
        return _ANY.dump_python(item, mode="json")


@overload
async def run_queue_processor_async(
    func: Callable[..., Coroutine[Any, Any, Out]],
    data: Any,
    *,
    expect_failure: bool = False,
    max_retries: int | None = None,
    services: Any = None,
    options: ProcessorOptions | None = None,
) -> ProcessorRun[Out]: ...


@overload
async def run_queue_processor_async(
    func: Callable[..., Out],
    data: Any,
    *,
    expect_failure: bool = False,
    max_retries: int | None = None,
    services: Any = None,
    options: ProcessorOptions | None = None,
) -> ProcessorRun[Out]: ...


async def run_queue_processor_async(
    func: Callable[..., Any],
    data: Any,
    *,
    expect_failure: bool = False,
    max_retries: int | None = None,
    services: Any = None,
    options: ProcessorOptions | None = None,
) -> ProcessorRun[Any]:
    """`run_queue_processor` for async tests."""
    name, declared = _options_for(func, max_retries)
    processor = Processor.from_function(name, func, options or declared)
    items: Sequence[Any] = data if processor.is_batch else [data]
    if processor.is_batch and not isinstance(data, list):
        raise TypeError("a batch processor takes a list of items as `data`")
    backend = MemoryBackend(clock=VirtualClock())
    seen: list[JobEvent] = []
    # The private backend is the default while the job runs: a processor that enqueues a
    # follow-up job through the generated client does so here, not on the project's queue.
    try:
        with use_backend(backend):
            ids = await backend.enqueue_many(
                [EnqueueRequest(queue=name, payload=_payload(processor, item)) for item in items]
            )
            worker = WorkerOptions(processors=[processor], burst=True, services=services)
            worker.events.subscribe("*", seen.append)
            await backend.run_worker(worker)
        infos = [await backend.get_job(name, job_id) for job_id in ids]
        dlq = processor.options.dead_letter_queue
        records = await backend.dead_letters(dlq, limit=len(ids)) if dlq else []
    finally:
        await backend.close()
    outputs = []
    for info in infos:
        assert info is not None
        completed = info.state == JobState.COMPLETED
        outputs.append(processor.output_adapter.validate_python(info.result) if completed else None)
    worst = next((i for i in infos if i is not None and i.state != JobState.COMPLETED), infos[0])
    assert worst is not None
    run: ProcessorRun[Any] = ProcessorRun(
        status=worst.state,
        attempts=max(i.attempts_made for i in infos if i is not None),
        output=outputs if processor.is_batch else outputs[0],
        error=worst.error if worst.state != JobState.COMPLETED else None,
        progress=worst.progress,
        dead_lettered=worst.state == JobState.DEAD_LETTERED,
        dead_letter=next((r for r in records if r.job_id == worst.id), None),
        job_ids=tuple(ids),
        events=tuple(seen),
    )
    if expect_failure and run.succeeded:
        raise AssertionError(f"{name}: expected the job to fail, it completed with {run.output!r}")
    if not expect_failure and not run.succeeded:
        error = run.error.traceback or run.error.message if run.error else "no error"
        raise AssertionError(
            f"{name}: the job ended {run.status.value} after {run.attempts} attempt(s):\n{error}"
        )
    return run


@overload
def run_queue_processor(
    func: Callable[..., Coroutine[Any, Any, Out]],
    data: Any,
    *,
    expect_failure: bool = False,
    max_retries: int | None = None,
    services: Any = None,
    options: ProcessorOptions | None = None,
) -> ProcessorRun[Out]: ...


@overload
def run_queue_processor(
    func: Callable[..., Out],
    data: Any,
    *,
    expect_failure: bool = False,
    max_retries: int | None = None,
    services: Any = None,
    options: ProcessorOptions | None = None,
) -> ProcessorRun[Out]: ...


def run_queue_processor(
    func: Callable[..., Any],
    data: Any,
    *,
    expect_failure: bool = False,
    max_retries: int | None = None,
    services: Any = None,
    options: ProcessorOptions | None = None,
) -> ProcessorRun[Any]:
    """Run `func` on `data` with the real engine and worker on a memory backend with a virtual
    clock (backoff and delays take no real time). Options come from its `@queue_processor`
    declaration (or `options`); `max_retries` overrides the retries (attempts = 1 + retries).

    Raises AssertionError when the job fails and `expect_failure` is False, or completes and
    `expect_failure` is True. Timeouts are real (a processor that sleeps past its `timeout`
    really waits that long).
    """
    return run_sync(
        run_queue_processor_async(
            func,
            data,
            expect_failure=expect_failure,
            max_retries=max_retries,
            services=services,
            options=options,
        )
    )


try:
    import pytest
except ImportError:  # pragma: no cover - pytest is only needed for the fixtures
    pass
else:

    @pytest.fixture
    def virtual_clock() -> VirtualClock:
        """A clock that only moves when slept on or advanced."""
        return VirtualClock()

    @pytest.fixture
    def memory_backend(virtual_clock: VirtualClock) -> Iterator[MemoryBackend]:
        """A fresh in-process backend on `virtual_clock`, the default backend for the test's
        duration (`use_backend`), closed after it."""
        backend = MemoryBackend(clock=virtual_clock)
        try:
            with use_backend(backend):
                yield backend
        finally:
            run_sync(backend.close())
