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
                self._woken.set()  # whatever was sent while not listening is lost: look again
                backoff = 0.1
                async for _ in conn.notifies():
                    self._woken.set()
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

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
