"""The declaration API: `queue_processor` and `add_queue_processor`.

At run time a declaration only validates its options and records a `ProcessorSpec` on the
function. Discovery is the generator's job (it reads the source without importing it); workers
load processors from the generated registry, never from import side effects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, Unpack

from pikku_queue.options import (
    ProcessorOptionArgs,
    ProcessorOptions,
    QueueDefinition,
    processor_options,
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


def _build_options(name: str, args: ProcessorOptionArgs) -> ProcessorOptions:
    options = processor_options(args)
    QueueDefinition(name=name, options=options)  # validates the name and the DLQ against it
    return options


def queue_processor(name: str, **options: Unpack[ProcessorOptionArgs]) -> Callable[[F], F]:
    """Declare the decorated function as the processor of queue `name`; the keywords are the
    fields of `ProcessorOptions` (concurrency, max_concurrency, retry_options, priority, delay,
    timeout, dead_letter_queue, max_stalled_count, metrics, events, batch, repeat).

    `repeat=Repeat(cron=...)` (or `every=`) also schedules the processor itself: every run
    enqueues the payload `{}`, so the input type must accept an empty object."""
    validated = _build_options(name, options)

    def decorate(func: F) -> F:
        setattr(func, PROCESSOR_ATTRIBUTE, ProcessorSpec(name=name, func=func, options=validated))
        return func

    return decorate


def add_queue_processor(
    *, name: str, func: Callable[..., Any], **options: Unpack[ProcessorOptionArgs]
) -> ProcessorSpec:
    """The seed's call form of `queue_processor`: declare `func` as the processor of `name`."""
    spec = ProcessorSpec(name=name, func=func, options=_build_options(name, options))
    setattr(func, PROCESSOR_ATTRIBUTE, spec)
    return spec


def spec_of(func: Callable[..., Any]) -> ProcessorSpec | None:
    """The spec a declaration recorded on `func`, if any."""
    spec = getattr(func, PROCESSOR_ATTRIBUTE, None)
    return spec if isinstance(spec, ProcessorSpec) else None
