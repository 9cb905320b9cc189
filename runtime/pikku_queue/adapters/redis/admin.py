"""What the web monitor shows and does on Redis, with BullMQ's own operations: jobs by state a
page at a time (BullMQ's lists and sorted sets, read as BullMQ orders them), and retry
(`Job.retry`, BullMQ's reprocessJob script), remove (`Queue.remove`: removeJob), promote
(`Job.promote`), pause and resume (`Queue.pause` / `resume`: the meta flag Node's
`isPaused()` reads) and clean (`Queue.clean`: cleanJobsInSet). So Node BullMQ, Bull Board and
our workers see the same state after an action as after the same action taken there.

The cursor of a page is an offset into the state's BullMQ keys, taken in order (waiting: the
wait list, then the prioritized set, then a legacy paused list). BullMQ's failed set holds both
our failed and our dead-lettered jobs; those pages keep the ones whose hash says which
(`jobs.OUTCOME_FIELD`), reading at most `SCAN_LIMIT` entries per page, so a page stays bounded
even when one kind crowds out the other (such a page may come back short, with a cursor).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from bullmq import Job

from pikku_queue.errors import BackendError
from pikku_queue.records import CLEANABLE_STATES, JobInfo, JobPage, JobState

from .jobs import CANCEL_FIELD, ERROR_FIELD, OUTCOME_FIELD, job_info

if TYPE_CHECKING:
    import redis.asyncio as aioredis
    from bullmq import Queue

#: Most failed-set entries one page of failed or dead-lettered jobs reads.
SCAN_LIMIT = 5_000
#: Most jobs one cleanJobsInSet call removes (each call is one Lua script: Redis serves
#: nothing else while it runs).
CLEAN_BATCH = 1_000

#: Each listed state's BullMQ keys, in page order, and whether each is a sorted set.
_SOURCES: dict[JobState, tuple[tuple[str, bool], ...]] = {
    JobState.WAITING: (("wait", False), ("prioritized", True), ("paused", False)),
    JobState.DELAYED: (("delayed", True),),
    JobState.ACTIVE: (("active", False),),
    JobState.COMPLETED: (("completed", True),),
}


def _offset(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not cursor.isdigit():
        raise ValueError(f"{cursor!r} is not a cursor of this backend's job lists")
    return int(cursor)


class RedisAdmin:
    """The monitor's protocols, mixed into `RedisBackend` (whose connection methods these use)."""

    if TYPE_CHECKING:

        async def queue(self, name: str) -> Queue: ...

        async def client(self) -> aioredis.Redis: ...

        def key(self, queue: str, suffix: str) -> str: ...

        def _errors(self) -> contextlib.AbstractAsyncContextManager[None]: ...

    # -- lists ---------------------------------------------------------------------------

    async def list_jobs(
        self, queue: str, state: JobState, limit: int, cursor: str | None = None
    ) -> JobPage:
        limit = max(int(limit), 1)
        offset = _offset(cursor)
        async with self._errors():
            if state in (JobState.FAILED, JobState.DEAD_LETTERED, JobState.CANCELLED):
                return await self._failed_page(queue, state, limit, offset)
            return await self._plain_page(queue, state, limit, offset)

    async def _hashes(self, queue: str, ids: list[str]) -> list[dict[str, Any]]:
        client = await self.client()
        async with client.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hgetall(self.key(queue, job_id))
            return [dict(raw) for raw in await pipe.execute()]

    async def _plain_page(self, queue: str, state: JobState, limit: int, offset: int) -> JobPage:
        sources = _SOURCES[state]
        client = await self.client()
        async with client.pipeline(transaction=False) as pipe:
            for name, is_zset in sources:
                key = self.key(queue, name)
                if is_zset:
                    pipe.zcard(key)
                else:
                    pipe.llen(key)
            sizes = [int(size) for size in await pipe.execute()]
        found: list[tuple[str, str]] = []  # (id, BullMQ state)
        start = offset
        for (name, is_zset), size in zip(sources, sizes, strict=True):
            if start >= size:
                start -= size
                continue
            want = limit + 1 - len(found)
            key = self.key(queue, name)
            if is_zset:
                ids = await client.zrevrange(key, start, start + want - 1)
            else:
                ids = await client.lrange(key, start, start + want - 1)
            found += [(str(job_id), name) for job_id in ids]
            start = 0
            if len(found) > limit:
                break
        shown = found[:limit]
        hashes = await self._hashes(queue, [job_id for job_id, _ in shown])
        jobs = [
            job_info(queue, job_id, raw, "wait" if name == "paused" else name)
            for (job_id, name), raw in zip(shown, hashes, strict=True)
            if raw
        ]
        more = len(found) > limit
        return JobPage(jobs=jobs, next_cursor=str(offset + limit) if more else None)

    async def _failed_page(self, queue: str, state: JobState, limit: int, offset: int) -> JobPage:
        """Failed or dead-lettered jobs, most recently failed first, from BullMQ's failed set."""
        client = await self.client()
        key = self.key(queue, "failed")
        # BullMQ's failed set holds all three; our mark in the hash says which each one is.
        wanted = {JobState.DEAD_LETTERED: "dead_lettered", JobState.CANCELLED: "cancelled"}
        wanted_mark = wanted.get(state)
        jobs: list[JobInfo] = []
        position = offset
        chunk = max(limit * 2, 100)
        while position - offset < SCAN_LIMIT:
            ids = [str(i) for i in await client.zrevrange(key, position, position + chunk - 1)]
            if not ids:
                return JobPage(jobs=jobs, next_cursor=None)
            hashes = await self._hashes(queue, ids)
            for index, (job_id, raw) in enumerate(zip(ids, hashes, strict=True)):
                mark = raw.get(OUTCOME_FIELD) if raw else None
                if not raw or (mark if mark in wanted.values() else None) != wanted_mark:
                    continue
                if len(jobs) == limit:  # one more exists: the next page starts at it
                    return JobPage(jobs=jobs, next_cursor=str(position + index))
                jobs.append(job_info(queue, job_id, raw, "failed"))
            position += len(ids)
            if len(ids) < chunk:
                return JobPage(jobs=jobs, next_cursor=None)
        return JobPage(jobs=jobs, next_cursor=str(position))

    # -- actions -------------------------------------------------------------------------

    async def _job(self, bull: Queue, queue: str, job_id: str) -> Job:
        """The job for BullMQ's job methods, which need only its id (a payload that is not
        JSON would make bullmq-python's own loading fail)."""
        return Job(bull, queue, None, {}, job_id)

    async def retry_failed_in_place(self, queue: str, job_id: str) -> None:
        """BullMQ's retry of a job in its failed set (attempts reset), and our record of why it
        failed cleared: what a replay and a retry both do to a job still stored."""
        bull = await self.queue(queue)
        await (await self._job(bull, queue, job_id)).retry("failed", {"resetAttemptsMade": True})
        client = await self.client()
        await client.hdel(self.key(queue, job_id), OUTCOME_FIELD, ERROR_FIELD, CANCEL_FIELD)
        await client.zrem(self.key(queue, "pikku:dead"), job_id)
        await client.zrem(self.key(queue, "pikku:cancelled"), job_id)

    async def retry_job(self, queue: str, job_id: str) -> bool:
        async with self._errors():
            bull = await self.queue(queue)
            if await bull.getJobState(job_id) != "failed":
                return False
            outcome = await (await self.client()).hget(self.key(queue, job_id), OUTCOME_FIELD)
            if outcome in ("dead_lettered", "cancelled"):
                return False  # a dead letter goes back by its record; a cancel stands
            try:
                await self.retry_failed_in_place(queue, job_id)
            except TypeError:  # BullMQ's script refused (its error): no longer failed
                return False
            return True

    async def remove_job(self, queue: str, job_id: str) -> bool:
        async with self._errors():
            client = await self.client()
            if not await client.exists(self.key(queue, job_id)):
                return False
            removed = await (await self.queue(queue)).remove(job_id)
            if removed != 1:  # 0: locked (active); -8: a job scheduler's next run
                return False
            await client.zrem(self.key(queue, "pikku:dead"), job_id)
            await client.zrem(self.key(queue, "pikku:cancelled"), job_id)
            return True

    async def promote_job(self, queue: str, job_id: str) -> bool:
        async with self._errors():
            bull = await self.queue(queue)
            try:
                await (await self._job(bull, queue, job_id)).promote()
            except TypeError:  # BullMQ's promote script refused (its error): not delayed
                return False
            return True

    async def pause_queue(self, queue: str) -> None:
        async with self._errors():
            await (await self.queue(queue)).pause()

    async def resume_queue(self, queue: str) -> None:
        async with self._errors():
            await (await self.queue(queue)).resume()

    async def is_paused(self, queue: str) -> bool:
        async with self._errors():
            return bool(await (await self.queue(queue)).isPaused())

    async def clean_jobs(self, queue: str, state: JobState, grace_ms: int = 0) -> int:
        if state not in CLEANABLE_STATES:
            raise BackendError(f"only completed or failed jobs are cleaned, not {state}")
        async with self._errors():
            bull = await self.queue(queue)
            client = await self.client()
            removed = 0
            while True:
                ids = [str(i) for i in await bull.clean(max(grace_ms, 0), CLEAN_BATCH, str(state))]
                if ids and state is JobState.FAILED:
                    await client.zrem(self.key(queue, "pikku:dead"), *ids)
                    await client.zrem(self.key(queue, "pikku:cancelled"), *ids)
                removed += len(ids)
                if len(ids) < CLEAN_BATCH:
                    return removed
