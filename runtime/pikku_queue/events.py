"""Job events delivered to subscribed callbacks.

A callback that raises is logged and skipped: an observer must never change a job's outcome.
"""

from __future__ import annotations

import importlib
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pikku_queue.errors import PikkuQueueError

logger = logging.getLogger("pikku_queue.events")


@dataclass(frozen=True)
class JobEvent:
    name: str  # completed | failed | stalled | retrying | dead_lettered | progress
    queue: str
    job_id: str
    attempt: int
    data: dict[str, Any] = field(default_factory=dict)


EventCallback = Callable[[JobEvent], None]


class EventBus:
    """Callbacks keyed by event name; `"*"` receives every event."""

    def __init__(self) -> None:
        self._subscribers: dict[str, list[EventCallback]] = defaultdict(list)

    def subscribe(self, name: str, callback: EventCallback) -> Callable[[], None]:
        """Subscribe and return a function that unsubscribes."""
        self._subscribers[name].append(callback)
        return lambda: self._subscribers[name].remove(callback)

    def emit(self, event: JobEvent) -> None:
        for callback in (*self._subscribers.get(event.name, ()), *self._subscribers.get("*", ())):
            try:
                callback(event)
            except Exception:
                logger.exception("event callback for %r raised; ignored", event.name)


def subscribe_hook(bus: EventBus, reference: str) -> Callable[[], None]:
    """Subscribe the user's `pkg.module:function` (`[tool.pikkugen] events`, which
    `pikkugen worker` passes) to every event of `bus`; a reference that does not import is
    a PikkuQueueError naming it, before any job runs."""
    module_name, _, attribute = reference.partition(":")
    try:
        target: object = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except Exception as exc:  # the user's module may raise anything at import
        raise PikkuQueueError(
            f"the events hook {reference!r} cannot be loaded: {type(exc).__name__}: {exc}"
        ) from None
    if not callable(target):
        raise PikkuQueueError(f"the events hook {reference!r} is not callable")
    return bus.subscribe("*", target)
