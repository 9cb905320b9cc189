"""The declaration API: `queue_processor` and `add_queue_processor`.

At run time a declaration only validates its options and records a `ProcessorSpec` on the
function. Discovery is the generator's job (it reads the source without importing it); workers
load processors from the generated registry, never from import side effects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pikku_queue.options import (
    BatchOptions,
    EventName,
    ProcessorOptions,
    QueueDefinition,
    Repeat,
    RetryOptions,
)

F = TypeVar("F", bound=Callable[..., Any])

PROCESSOR_ATTRIBUTE = "__pikku_processor__"


@dataclass(frozen=True)
class ProcessorSpec:
    """A queue name, its validated options and the function that serves it."""

    name: str
    func: Callable[..., Any]
    options: ProcessorOptions

    @property
    def definition(self) -> QueueDefinition:
        return QueueDefinition(name=self.name, options=self.options)


def _build_options(
    name: str,
    *,
    concurrency: int,
    max_concurrency: int | None,
    retry_options: RetryOptions | Mapping[str, Any] | None,
    priority: int | None,
    delay: int,
    timeout: int | None,
    dead_letter_queue: str | None,
    max_stalled_count: int,
    metrics: bool,
    events: Iterable[EventName] | None,
    batch: BatchOptions | Mapping[str, Any] | None,
    repeat: Repeat | Mapping[str, Any] | None,
) -> ProcessorOptions:
    raw: dict[str, Any] = {
        "concurrency": concurrency,
        "max_concurrency": max_concurrency,
        "priority": priority,
        "delay": delay,
        "timeout": timeout,
        "dead_letter_queue": dead_letter_queue,
        "max_stalled_count": max_stalled_count,
        "metrics": metrics,
        "batch": batch,
        "repeat": repeat,
    }
    if retry_options is not None:
        raw["retry_options"] = retry_options
    if events is not None:
        raw["events"] = tuple(events)
    options = ProcessorOptions.model_validate(raw)
    QueueDefinition(name=name, options=options)  # validates the name and the DLQ against it
    return options


def queue_processor(
    name: str,
    *,
    concurrency: int = 1,
    max_concurrency: int | None = None,
    retry_options: RetryOptions | Mapping[str, Any] | None = None,
    priority: int | None = None,
    delay: int = 0,
    timeout: int | None = None,
    dead_letter_queue: str | None = None,
    max_stalled_count: int = 1,
    metrics: bool = False,
    events: Iterable[EventName] | None = None,
    batch: BatchOptions | Mapping[str, Any] | None = None,
    repeat: Repeat | Mapping[str, Any] | None = None,
) -> Callable[[F], F]:
    """Declare the decorated function as the processor of queue `name`.

    `repeat=Repeat(cron=...)` (or `every=`) also schedules the processor itself: every run
    enqueues the payload `{}`, so the input type must accept an empty object."""
    options = _build_options(
        name,
        concurrency=concurrency,
        max_concurrency=max_concurrency,
        retry_options=retry_options,
        priority=priority,
        delay=delay,
        timeout=timeout,
        dead_letter_queue=dead_letter_queue,
        max_stalled_count=max_stalled_count,
        metrics=metrics,
        events=events,
        batch=batch,
        repeat=repeat,
    )

    def decorate(func: F) -> F:
        setattr(func, PROCESSOR_ATTRIBUTE, ProcessorSpec(name=name, func=func, options=options))
        return func

    return decorate


def add_queue_processor(
    *,
    name: str,
    func: Callable[..., Any],
    concurrency: int = 1,
    max_concurrency: int | None = None,
    retry_options: RetryOptions | Mapping[str, Any] | None = None,
    priority: int | None = None,
    delay: int = 0,
    timeout: int | None = None,
    dead_letter_queue: str | None = None,
    max_stalled_count: int = 1,
    metrics: bool = False,
    events: Iterable[EventName] | None = None,
    batch: BatchOptions | Mapping[str, Any] | None = None,
    repeat: Repeat | Mapping[str, Any] | None = None,
) -> ProcessorSpec:
    """The seed's call form of `queue_processor`: declare `func` as the processor of `name`."""
    options = _build_options(
        name,
        concurrency=concurrency,
        max_concurrency=max_concurrency,
        retry_options=retry_options,
        priority=priority,
        delay=delay,
        timeout=timeout,
        dead_letter_queue=dead_letter_queue,
        max_stalled_count=max_stalled_count,
        metrics=metrics,
        events=events,
        batch=batch,
        repeat=repeat,
    )
    spec = ProcessorSpec(name=name, func=func, options=options)
    setattr(func, PROCESSOR_ATTRIBUTE, spec)
    return spec


def spec_of(func: Callable[..., Any]) -> ProcessorSpec | None:
    """The spec a declaration recorded on `func`, if any."""
    spec = getattr(func, PROCESSOR_ATTRIBUTE, None)
    return spec if isinstance(spec, ProcessorSpec) else None
