"""Waiting for a job to end on Redis without polling: BullMQ's events stream.

BullMQ's scripts append an entry to `<prefix>:<queue>:events` (a Redis stream) whenever a job
changes: `event` (`completed`, `failed`, `removed`, `delayed`, ...), `jobId`, and for the
final ones `returnvalue` or `failedReason`. Node's `QueueEvents` reads that stream with
`XREAD BLOCK`; `JobHandle.result()` does the same here, through one reader per queue and event
loop of a backend, shared by every waiter of that queue: a thousand concurrent waits hold one
connection, not a thousand.

The order that keeps it correct: a waiter registers with the reader and waits until the
reader has fixed its starting point (the stream's last id, read with `XREVRANGE`) before it
reads the job; the reader reads everything after that point. So a job that ended before the
read is seen by the read, and one that ends after it appends an entry the reader has not yet
passed and wakes the waiter, which reads the job again. Only the entries that may end a wait
wake anyone (`ENDING`), and each is a hint, never the answer (a failure that will be retried
is a `failed` entry too). A reader whose connection
fails wakes its waiters and leaves them on the bounded polling of a backend without push; the
next wait starts a new reader. A reader with no waiters for `IDLE_S` closes its connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import redis.asyncio as aioredis

from pikku_queue.backend import JobWatch

logger = logging.getLogger("pikku_queue.redis")

#: How long one XREAD blocks (ms): a reader notices it has been idle within this.
BLOCK_MS = 2_000
#: A reader with no waiter for this long stops (seconds).
IDLE_S = 30.0
#: A waiter whose reader runs reads its job again at least this often anyway (seconds), in case
#: an entry was trimmed away (MAXLEN) before the reader reached it.
RECHECK_S = 5.0
#: The entries that may end a wait (a `failed` job may still be retried: the waiter reads it
#: to know). Others (`active`, `progress`, `waiting`, `delayed`, ...) wake nobody.
ENDING = frozenset({"completed", "failed", "removed"})
#: Entries read per XREAD.
READ_COUNT = 1_000


class EventsReader:
    """One queue's events stream, read for every waiter of one event loop."""

    def __init__(
        self,
        key: str,
        connect: Callable[[], aioredis.Redis],
        forget: Callable[[EventsReader], object],
    ) -> None:
        self.key = key
        self._connect = connect
        self._forget = forget
        #: job id → its waiters' watches.
        self.waiters: dict[str, set[JobWatch]] = {}
        loop = asyncio.get_running_loop()
        #: Set once the starting point is fixed (True) or the reader failed first (False).
        self.ready: asyncio.Future[bool] = loop.create_future()
        self.failed = False
        self.task = loop.create_task(self._run(), name=f"pikku-redis-events {key}")

    async def _run(self) -> None:
        client = self._connect()
        try:
            last = await _last_id(client, self.key)
            self.ready.set_result(True)
            loop = asyncio.get_running_loop()
            idle_since: float | None = None
            while True:
                if self.waiters:
                    idle_since = None
                elif idle_since is None:
                    idle_since = loop.time()
                elif loop.time() - idle_since >= IDLE_S:
                    return
                reply: Any = await client.xread({self.key: last}, count=READ_COUNT, block=BLOCK_MS)
                for _stream, entries in reply or ():
                    for entry_id, fields in entries:
                        last = entry_id
                        if fields.get("event") not in ENDING:
                            continue  # `active`, `progress`, ...: the job is still on its way
                        watches = self.waiters.get(fields.get("jobId", ""))
                        if watches:
                            for watch in watches:
                                watch.notify()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the connection failed: the waiters fall back to polling
            logger.warning("reading %s for job results failed (%s); polling instead", self.key, exc)
            self.failed = True
            for watches in self.waiters.values():
                for watch in watches:
                    watch.recheck_s = None
                    watch.notify()
        finally:
            self._forget(self)  # synchronously, before any await: a new waiter starts a new reader
            if not self.ready.done():
                self.ready.set_result(False)
            with contextlib.suppress(Exception):
                await client.aclose()

    @contextlib.asynccontextmanager
    async def watch(self, job_id: str) -> AsyncIterator[JobWatch]:
        watch = JobWatch(RECHECK_S)
        self.waiters.setdefault(job_id, set()).add(watch)
        try:
            if not await asyncio.shield(self.ready) or self.failed:
                watch.recheck_s = None  # no push: the waiter polls
            yield watch
        finally:
            watches = self.waiters.get(job_id)
            if watches is not None:
                watches.discard(watch)
                if not watches:
                    del self.waiters[job_id]

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task


async def _last_id(client: aioredis.Redis, key: str) -> str:
    """The id of the stream's newest entry ("0-0" for a stream not yet written)."""
    newest: Any = await client.xrevrange(key, "+", "-", count=1)
    return str(newest[0][0]) if newest else "0-0"
