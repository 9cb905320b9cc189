"""Attempt observers: how metrics (`pikku_queue.metrics`) and traces (`pikku_queue.tracing`)
see every attempt on every backend.

Every backend runs a delivered job through the engine (the pull worker, the Redis and SQS
workers, the push core under Lambda and Cloudflare), so the engine is the one place that
tells observers an attempt started and how it ended. With no observer registered the engine
pays one list check per attempt. An observer that raises is logged and skipped: observing
never changes a job's outcome.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pikku_queue.outcomes import Delivery, Outcome
    from pikku_queue.processor import Processor

logger = logging.getLogger("pikku_queue.observe")

#: Called once when the attempt ends, with each delivery's outcome and the run time.
AttemptEnd = Callable[[Sequence[tuple["Delivery", "Outcome"]], float], None]


class Observer(Protocol):
    def attempt_started(
        self, processor: Processor, deliveries: Sequence[Delivery]
    ) -> AttemptEnd | None:
        """An attempt of `deliveries` (one, or a batch's items) starts on this task; return
        what to call when it ends (or None)."""
        ...

    def stalled(self, queue: str, count: int) -> None:
        """`count` jobs of `queue` came back because their worker lost its lease."""
        ...


OBSERVERS: list[Observer] = []


def add_observer(observer: Observer) -> Callable[[], None]:
    """Register an observer; return a function that removes it."""
    OBSERVERS.append(observer)

    def remove() -> None:
        if observer in OBSERVERS:
            OBSERVERS.remove(observer)

    return remove


class Attempt:
    """The ends of one attempt, called in reverse order of their starts."""

    __slots__ = ("_ends",)

    def __init__(self, ends: list[AttemptEnd]) -> None:
        self._ends = ends

    def done(self, settled: Sequence[tuple[Delivery, Outcome]], elapsed_s: float) -> None:
        for end in reversed(self._ends):
            try:
                end(settled, elapsed_s)
            except Exception:
                logger.exception("attempt observer raised; ignored")


def attempt(processor: Processor, deliveries: Sequence[Delivery]) -> Attempt | None:
    """Tell the observers an attempt starts (None, at no cost, when there are none, and None
    too when none of them wants to hear how it ends: tracing with no provider set)."""
    if not OBSERVERS:
        return None
    ends = []
    for observer in tuple(OBSERVERS):
        try:
            end = observer.attempt_started(processor, deliveries)
        except Exception:
            logger.exception("attempt observer raised; ignored")
            continue
        if end is not None:
            ends.append(end)
    if not ends:
        return None
    return Attempt(ends)


def stalled(queue: str, count: int) -> None:
    for observer in tuple(OBSERVERS):
        try:
            observer.stalled(queue, count)
        except Exception:
            logger.exception("stall observer raised; ignored")
