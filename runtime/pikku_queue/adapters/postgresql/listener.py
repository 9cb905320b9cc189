"""LISTEN/NOTIFY: how an idle worker learns at once that a job is ready.

Every enqueue of a job that is ready now notifies the schema's channel (the payload is the
queue name) in the enqueueing transaction, so the notification arrives when that transaction
commits, and never for a rollback. A worker process keeps one connection listening; an idle
pull loop waits on `wait` instead of sleeping out its poll interval, and leases within
milliseconds. A notification is only a hint: the worker still polls at its (long) poll
interval, and after the listening connection is lost (a server restart) it reconnects by
itself and wakes every waiter once, since notifications sent meanwhile are gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import psycopg

logger = logging.getLogger("pikku_queue.postgresql")


class Listener:
    """One LISTEN connection and the wake-up of the waiters of this process."""

    def __init__(self, conninfo: str, channel: str) -> None:
        self.conninfo = conninfo
        self.channel = channel
        #: Set by a notification (or a reconnect); the next `wait` returns at once.
        self._woken = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._listen(), name="pikku-pg-listen")

    async def wait(self, timeout_s: float) -> None:
        """Return when a job may have become ready (a notification since the last wait), or
        after `timeout_s`."""
        self.start()
        if not self._woken.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), timeout_s)
        self._woken.clear()

    async def ready(self, timeout_s: float = 10.0) -> None:
        """Wait until the LISTEN is in place (tests, and a worker's first start)."""
        self.start()
        await asyncio.wait_for(self._connected.wait(), timeout_s)

    async def _listen(self) -> None:
        backoff = 0.1
        while True:
            conn: psycopg.AsyncConnection[Any] | None = None
            try:
                conn = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
                await conn.execute(f"LISTEN {self.channel}")
                self._connected.set()
                self._wake_all()  # whatever was sent while not listening is lost: look again
                backoff = 0.1
                async for notify in conn.notifies():
                    self._notified(notify.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._connected.clear()
                logger.warning("LISTEN connection lost (%s); reconnecting in %.1f s", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()

    def _notified(self, payload: str) -> None:
        self._woken.set()

    def _wake_all(self) -> None:
        self._woken.set()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None


class FinishedListener(Listener):
    """The producer's side: `JobHandle.result()` waits here for a job of its queue to finish
    (the settle notifies the schema's finished channel with the queue's name, in the same
    statement), instead of reading the job every few milliseconds. Opened on the first wait
    of an event loop: a producer that never waits for a result holds no LISTEN connection."""

    def __init__(self, conninfo: str, channel: str) -> None:
        super().__init__(conninfo, channel)
        self._waiters: dict[str, set[asyncio.Event]] = {}

    @contextlib.asynccontextmanager
    async def watch(self, queue: str) -> AsyncIterator[FinishWatch]:
        """Subscribe to `queue`'s finished jobs; the LISTEN is in place (or 2 s passed, and
        the waiter polls) before the caller's first read, so no end is missed in between."""
        self.start()
        event = asyncio.Event()
        self._waiters.setdefault(queue, set()).add(event)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._connected.wait(), 2.0)
            # The caller reads the job next: a wake-up from before (this connection's first
            # LISTEN wakes everyone) tells it nothing more.
            event.clear()
            yield FinishWatch(event)
        finally:
            waiters = self._waiters.get(queue)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[queue]

    def _notified(self, payload: str) -> None:
        for event in self._waiters.get(payload, ()):
            event.set()

    def _wake_all(self) -> None:
        for waiters in self._waiters.values():
            for event in waiters:
                event.set()


class FinishWatch:
    """One waiter's subscription (`backend.FinishWatch`)."""

    def __init__(self, event: asyncio.Event) -> None:
        self._event = event

    async def wait(self, timeout_s: float) -> None:
        if not self._event.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), timeout_s)
        self._event.clear()
