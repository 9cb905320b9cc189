"""What a processor receives besides its payload: `JobContext`.

Progress updates must work from async processors (`await ctx.progress.update(...)`) and from
sync processors running in a worker thread (`ctx.progress.update(...)` with no await), so
`update` records at once and returns an awaitable that waits for the backend's write.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass, field
from typing import Any

JSONDict = dict[str, Any]
#: Where progress goes: the backend stores it (and may return an awaitable for the write).
ProgressSink = Callable[[JSONDict], Awaitable[None] | None]


class _Done:
    """An awaitable for a write that is finished, or scheduled on another loop."""

    def __init__(self, future: asyncio.Future[Any] | None = None) -> None:
        self._future = future

    def __await__(self) -> Generator[Any, None, None]:
        if self._future is not None:
            yield from self._future.__await__()


class Progress:
    """`ctx.progress`: the latest progress of this job, forwarded to the backend."""

    def __init__(
        self, sink: ProgressSink | None = None, loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        self._sink = sink
        self._loop = loop
        self.latest: JSONDict | None = None
        self.history: list[JSONDict] = []

    def update(
        self,
        *,
        processed: int | None = None,
        total: int | None = None,
        percentage: float | None = None,
        **extra: Any,
    ) -> _Done:
        data: JSONDict = {
            k: v
            for k, v in (("processed", processed), ("total", total), ("percentage", percentage))
            if v is not None
        }
        if percentage is None and processed is not None and total:
            data["percentage"] = round(processed * 100 / total, 2)
        data.update(extra)
        self.latest = data
        self.history.append(data)
        if self._sink is None:
            return _Done()
        result = self._sink(data)
        if result is None:
            return _Done()
        return _Done(self._schedule(result))

    def _schedule(self, awaitable: Awaitable[None]) -> asyncio.Future[Any] | None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None:
            return asyncio.ensure_future(awaitable)
        if self._loop is None:
            raise RuntimeError("progress.update called outside the worker's event loop")
        concurrent = asyncio.run_coroutine_threadsafe(_as_coroutine(awaitable), self._loop)
        concurrent.result()
        return None


async def _as_coroutine(awaitable: Awaitable[None]) -> None:
    await awaitable


class CancelSignal:
    """A request to stop one running attempt (`JobHandle.cancel`), set by the worker that runs
    it once its backend reports the request. Safe to read from a sync processor's thread
    (`ctx.cancelled`); `on_request` callbacks run where `request` is called (the worker's loop).
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._callbacks: list[Callable[[], object]] = []

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def request(self) -> None:
        if self._event.is_set():
            return
        self._event.set()
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def on_request(self, callback: Callable[[], object]) -> Callable[[], None]:
        """Call `callback` when the stop is requested (at once if it already was); returns a
        function that forgets it (when what it would stop has ended)."""
        if self._event.is_set():
            callback()
        else:
            self._callbacks.append(callback)

        def forget() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

        return forget


@dataclass
class JobContext:
    """The first argument of every processor."""

    job_id: str
    queue: str
    attempt: int
    logger: logging.Logger
    services: Any = None
    progress: Progress = field(default_factory=Progress)
    #: For batch processors: the ids of the jobs in this call, in the order of the payload list.
    job_ids: tuple[str, ...] = ()
    #: For batch processors: index → error for items the processor marked failed.
    failed_items: dict[int, BaseException] = field(default_factory=dict)
    #: Set when the job is cancelled while it runs (`ctx.cancelled`).
    cancel_signal: CancelSignal = field(default_factory=CancelSignal)

    @property
    def cancelled(self) -> bool:
        """True once the job was cancelled (`JobHandle.cancel`) while this attempt runs. An
        async processor is cancelled outright (`asyncio.CancelledError` at its next await);
        a sync one cannot be interrupted and should check this between steps and return. The
        attempt ends `cancelled` whatever it then returns or raises."""
        return self.cancel_signal.requested

    def fail_item(self, index: int, error: BaseException | str) -> None:
        """Mark one item of a batch failed: it is retried (or dead-lettered) alone, while the
        other items complete with the results returned for them."""
        if not 0 <= index < max(len(self.job_ids), 1):
            raise IndexError(f"batch item {index} does not exist (batch of {len(self.job_ids)})")
        self.failed_items[index] = error if isinstance(error, BaseException) else Exception(error)
