"""Notice an async processor that blocks the worker's event loop.

`time.sleep(3)` (or CPU-bound work, or a blocking client) inside an `async def` processor
stops every other job of the worker, and no timeout can interrupt it: the timeout itself runs
on the blocked loop. The worker can still see it afterwards, the way asyncio's debug mode
measures slow callbacks: a heartbeat task sleeps a short interval, and when it wakes up much
later than asked, the loop was blocked for that long. The async attempts that were running
during that gap (seen through the engine's attempt observers, so on every backend) are named
in one warning that points to `def` processors, which run on a thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pikku_queue import observe

if TYPE_CHECKING:
    from pikku_queue.outcomes import Delivery, Outcome
    from pikku_queue.processor import Processor

logger = logging.getLogger("pikku_queue.pull")

#: A loop blocked at least this long is reported (asyncio's debug mode uses 0.1 s for one
#: callback; a job may reasonably hold the loop a little longer, e.g. validating a payload).
DEFAULT_THRESHOLD_S = 0.5
#: How often the heartbeat wakes up.
DEFAULT_INTERVAL_S = 0.05


@dataclass(frozen=True)
class Blocked:
    """One gap: how long the loop did not run, and the async processors that may be why."""

    seconds: float
    #: "queue (module.function)" of each async attempt running during the gap, sorted.
    processors: tuple[str, ...]

    def message(self) -> str:
        names = ", ".join(self.processors) or "no running job (something else on the loop)"
        return (
            f"the event loop was blocked for {self.seconds:.1f} s while {names} ran: an async"
            " processor must not block (time.sleep, CPU-bound work, a blocking client); make it"
            " a `def` processor, which runs on a thread"
        )


def _describe(processor: Processor) -> str:
    func = processor.func
    return f"{processor.name} ({func.__module__}.{func.__qualname__})"


class LoopWatch:
    """An attempt observer (running async attempts) plus the heartbeat that measures gaps."""

    def __init__(
        self,
        threshold_s: float = DEFAULT_THRESHOLD_S,
        interval_s: float = DEFAULT_INTERVAL_S,
    ) -> None:
        self.threshold_s = threshold_s
        self.interval_s = interval_s
        #: Running async attempts: key -> (name, loop time it started).
        self._running: dict[int, tuple[str, float]] = {}
        #: Attempts that ended since the heartbeat last woke: (name, started, ended); one may
        #: have blocked and finished within a single gap.
        self._ended: list[tuple[str, float, float]] = []
        self._next = 0
        self.blocks: list[Blocked] = []

    def attempt_started(
        self, processor: Processor, deliveries: Sequence[Delivery]
    ) -> observe.AttemptEnd | None:
        if not processor.is_async:
            return None  # a `def` processor runs on a thread: it cannot block the loop
        key = self._next
        self._next += 1
        name = _describe(processor)
        loop = asyncio.get_running_loop()
        self._running[key] = (name, loop.time())

        def end(settled: Sequence[tuple[Delivery, Outcome]], elapsed_s: float) -> None:
            started = self._running.pop(key, None)
            if started is not None:
                self._ended.append((*started, loop.time()))

        return end

    def stalled(self, queue: str, count: int) -> None:
        return None

    async def run(self, stop: asyncio.Event) -> None:
        """Measure until `stop` is set (or the task is cancelled)."""
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            self._ended.clear()
            asked = loop.time()
            await asyncio.sleep(self.interval_s)
            woke = loop.time()
            late = woke - asked - self.interval_s
            if late >= self.threshold_s:
                blocked = Blocked(round(late, 1), self._suspects(woke - late, woke))
                self.blocks.append(blocked)
                logger.warning("%s", blocked.message())

    def _suspects(self, begin: float, end: float) -> tuple[str, ...]:
        """The attempts that ran through most of the gap [begin, end]: a job that finished
        before the loop stopped, or started once it ran again, did not block it."""
        spans = [*self._ended, *((name, s, end) for name, s in self._running.values())]
        return tuple(
            sorted(
                {
                    name
                    for name, started, ended in spans
                    if min(ended, end) - max(started, begin) >= (end - begin) / 2
                }
            )
        )


def start(stop: asyncio.Event, threshold_s: float = DEFAULT_THRESHOLD_S) -> asyncio.Task[None]:
    """Watch the running loop until `stop` (call it on the worker's loop); the observer is
    removed when the task ends, also when it is cancelled with the loop."""
    watch = LoopWatch(threshold_s)

    async def run() -> None:
        remove = observe.add_observer(watch)
        try:
            await watch.run(stop)
        finally:
            remove()

    return asyncio.get_running_loop().create_task(run(), name="pikku-loop-watch")
