"""The `redis://` / `rediss://` backend, on the official `bullmq` package.

Every pikkugen queue is a BullMQ queue and every job's data is the plain JSON payload, so a
Node BullMQ worker, a Node producer and BullMQ dashboards see our jobs as their own. BullMQ's
Lua scripts own the job lifecycle (priority, delay, locks, stalled recovery, schedulers,
global concurrency); the engine still decides each outcome, `consumer` runs the workers,
`settle` turns each verdict into BullMQ's verbs and `admin` holds the monitor's lists and
actions (a mixin, on BullMQ's own operations).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions as redis_errors
from bullmq import Job, Queue
from bullmq.redis_connection import loadScript
from bullmq.utils import isRedisVersionLowerThan

from pikku_queue import tracing
from pikku_queue.adapters.redis import BACKEND
from pikku_queue.backend import JobWatch, WorkerOptions, WorkerReport
from pikku_queue.client import known_queues
from pikku_queue.errors import BackendError
from pikku_queue.options import ProcessorOptions, Repeat
from pikku_queue.payloads import dead_letter_forms, dump_json, dump_payload, raw_original
from pikku_queue.records import (
    CancelResult,
    DeadLetterRecord,
    EnqueueRequest,
    FinishedJob,
    JobInfo,
    QueueCounts,
)

from .admin import RedisAdmin
from .connection import check_connection, explain_connection_error, new_client
from .consumer import RedisWorker
from .events import EventsReader
from .jobs import CANCEL_FIELD, ERROR_FIELD, OUTCOME_FIELD, job_info, job_options, stored_count
from .url import KeepJobs, parse_redis_url

#: BullMQ's changeDelay script (`Dedupe(mode="extend")` pushes an earlier job's delay back).
CHANGE_DELAY = "changeDelay"
CHANGE_DELAY_SCRIPT = "changeDelay-4.lua"

#: Most finished jobs `finished_since` reads per state (figures only need a recent window).
FINISHED_SCAN_LIMIT = 100_000
#: How many dead-lettered (or cancelled) job ids a queue remembers for `counts()`.
DEAD_SET_LIMIT = 100_000
#: How often `cancel_job` looks again at a job that changed state under it.
CANCEL_TRIES = 5
#: BullMQ's removeJob answer for the pending next run of a job scheduler.
REMOVE_SCHEDULER_JOB = -8
#: Flag an active job for its worker (KEYS: the job hash, its lock, the active list; ARGV:
#: the field, the job id): the value is the lock's token, the attempt that was asked. A job
#: still active whose lock expired (its worker died) is flagged too: stall recovery gives it
#: to the next worker, which stops it. 0 when it is no longer active.
_FLAG_CANCEL = """
if redis.call("EXISTS", KEYS[1]) == 0 then
  return 0
end
local token = redis.call("GET", KEYS[2])
if not token then
  if not redis.call("LPOS", KEYS[3], ARGV[2]) then
    return 0
  end
  token = "unlocked"
end
redis.call("HSET", KEYS[1], ARGV[1], token)
return 1
"""


class RedisBackend(RedisAdmin):
    """A `Backend` over BullMQ queues in one Redis database."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str | None = None,
        remove_on_complete: KeepJobs | None = None,
        remove_on_fail: KeepJobs | None = None,
        queue_options: Mapping[str, ProcessorOptions] | None = None,
    ) -> None:
        settings = parse_redis_url(url)
        if prefix is not None:
            settings = replace(settings, prefix=prefix)
        if remove_on_complete is not None:
            settings = replace(settings, remove_on_complete=remove_on_complete)
        if remove_on_fail is not None:
            settings = replace(settings, remove_on_fail=remove_on_fail)
        self.url = url
        self.settings = settings
        self.capabilities = BACKEND.capabilities
        self._queue_options: dict[str, ProcessorOptions] = dict(queue_options or {})
        self._connections: dict[asyncio.AbstractEventLoop, _LoopConnection] = {}
        #: (event loop, queue) → the one reader of that queue's events stream for every
        #: `JobHandle.result()` waiting on that loop (`events`).
        self._event_readers: dict[tuple[asyncio.AbstractEventLoop, str], EventsReader] = {}

    def __repr__(self) -> str:
        return f"RedisBackend({self.settings.display_url!r})"

    def set_queue_options(self, name: str, options: ProcessorOptions) -> None:
        """Let jobs enqueued here carry the processor's attempts and backoff in their BullMQ
        opts, so a Node worker retries them as ours would."""
        self._queue_options[name] = options

    def options_for(self, queue: str) -> ProcessorOptions | None:
        """The processor options known for `queue`: set by a worker in this process, else
        those of the generated client's `TypedQueue` (how a producer-only process knows)."""
        options = self._queue_options.get(queue)
        if options is None:
            known = known_queues.get(queue)
            options = known.options if known is not None else None
        return options

    # -- connections -------------------------------------------------------------------

    async def client(self) -> aioredis.Redis:
        """The producer connection of the running event loop (redis-py clients are bound to
        the loop that opened them; a new loop gets a new connection)."""
        return (await self._connection()).client

    async def _connection(self) -> _LoopConnection:
        loop = asyncio.get_running_loop()
        connection = self._connections.get(loop)
        if connection is None:
            for other in [known for known in self._connections if known.is_closed()]:
                del self._connections[other]
            await check_connection(self.settings)
            opened_meanwhile = self._connections.get(loop)  # by a task awaiting beside us
            if opened_meanwhile is not None:
                return opened_meanwhile
            connection = _LoopConnection(new_client(self.settings))
            await connection.open(lambda: self._connections.pop(loop, None))  # never suspends
            self._connections[loop] = connection
        return connection

    async def queue(self, name: str) -> Queue:
        connection = await self._connection()
        queue = connection.queues.get(name)
        if queue is None:
            queue = Queue(
                name,
                {
                    "connection": connection.client,
                    "prefix": self.settings.prefix,
                    "defaultJobOptions": self.settings.default_job_options(),
                },
            )
            connection.queues[name] = queue
        return queue

    def key(self, queue: str, suffix: str) -> str:
        return f"{self.settings.prefix}:{queue}:{suffix}"

    @contextlib.asynccontextmanager
    async def _errors(self) -> AsyncIterator[None]:
        try:
            yield
        except BackendError:
            raise
        except (redis_errors.RedisError, OSError, TypeError) as exc:
            raise explain_connection_error(self.settings, exc) from exc

    # -- producer face -----------------------------------------------------------------

    async def enqueue(self, request: EnqueueRequest) -> str:
        # bullmq-python writes `data` itself (compact, ASCII escapes, allow_nan=False: the
        # text Node's JSON.parse reads); the writers' rule is checked first, so a lone
        # surrogate is refused here as on every backend, not dead-lettered by the worker.
        dump_payload(request.queue, request.payload)
        opts = job_options(request, self.options_for(request.queue))
        async with self._errors():
            queue = await self.queue(request.queue)
            if request.repeat is not None:
                return await self._schedule(queue, request, request.repeat, opts)
            job = await queue.add(request.queue, request.payload, opts)
            if request.dedupe is not None and request.dedupe.mode == "extend":
                await self._push_back(queue, str(job.id), request.delay_ms)
        return str(job.id)

    async def _push_back(self, queue: Queue, job_id: str, delay_ms: int) -> None:
        """`Dedupe(mode="extend")`: the job the key let in, while still delayed, is due
        `delay_ms` from now (BullMQ's changeDelay script; a job that is no longer delayed is
        left as it is, which the script reports with -3)."""
        if delay_ms <= 0:
            return
        scripts = queue.backend.scripts
        commands = scripts.commands  # the connection's registered scripts, by name
        if CHANGE_DELAY not in commands:  # BullMQ's script, which bullmq-python ships unused
            commands[CHANGE_DELAY] = scripts.redisClient.register_script(
                loadScript(CHANGE_DELAY_SCRIPT)
            )
        keys = [scripts.keys["delayed"], scripts.keys["meta"], scripts.keys["marker"]]
        keys.append(scripts.keys["events"])
        now = round(time.time() * 1000)
        await commands[CHANGE_DELAY](keys=keys, args=[delay_ms, now, job_id, scripts.toKey(job_id)])

    async def enqueue_many(self, requests: Sequence[EnqueueRequest]) -> list[str]:
        """Many jobs in one pipelined transaction per queue (BullMQ's addBulk); ids in order.
        Repeat schedules are upserted one by one, and so are jobs with `Dedupe(mode="extend")`
        (each may push an earlier job's delay back)."""
        ids: list[str | None] = [None] * len(requests)
        by_queue: dict[str, list[int]] = {}
        for index, request in enumerate(requests):
            dump_payload(request.queue, request.payload)  # as in `enqueue`, before any send
            extends = request.dedupe is not None and request.dedupe.mode == "extend"
            if request.repeat is None and not extends:
                by_queue.setdefault(request.queue, []).append(index)
        async with self._errors():
            for name, indexes in by_queue.items():
                options = self.options_for(name)
                jobs = [
                    {
                        "name": name,
                        "data": requests[i].payload,
                        "opts": job_options(requests[i], options),
                    }
                    for i in indexes
                ]
                added = await (await self.queue(name)).addBulk(jobs)
                for index, job in zip(indexes, added, strict=True):
                    ids[index] = str(job.id)
        for index, request in enumerate(requests):
            if ids[index] is None:
                ids[index] = await self.enqueue(request)
        return [str(job_id) for job_id in ids]

    async def _schedule(
        self, queue: Queue, request: EnqueueRequest, repeat: Repeat, opts: dict[str, Any]
    ) -> str:
        """A BullMQ job scheduler keyed by `EnqueueRequest.schedule_key()`, so calling this
        again updates the schedule instead of adding a second one."""
        repeat_opts: dict[str, Any] = (
            {"pattern": repeat.cron, "tz": "UTC"} if repeat.cron else {"every": repeat.every}
        )
        if repeat.limit is not None:
            repeat_opts["limit"] = repeat.limit
        scheduler_id = request.schedule_key()
        opts.pop("jobId", None)
        opts.pop("delay", None)
        # bullmq-python takes these positionally (the Node client takes a template object).
        job = await queue.upsertJobScheduler(
            scheduler_id, repeat_opts, request.queue, request.payload, opts
        )
        if job is None:
            raise BackendError(f"the schedule {repeat_opts} of {request.queue!r} never fires")
        return str(job.id)

    async def get_job(self, queue: str, job_id: str) -> JobInfo | None:
        async with self._errors():
            bull = await self.queue(queue)
            # The state first: a job read as finished has its result stored by then (one
            # script writes both); the other order could pair an active job's hash with the
            # `completed` state it reached between the two reads, and lose its result.
            both = await self._state_and_hash(bull, job_id)
            if both is None:
                state = await bull.getJobState(job_id)
                raw = await bull.backend.getJobData(job_id)
            else:
                state, raw = both
            if not raw:
                return None
        return job_info(queue, job_id, dict(raw), str(state))

    async def _state_and_hash(self, bull: Queue, job_id: str) -> tuple[Any, Any] | None:
        """BullMQ's `getStateV2` script and the job's hash in one round trip (a pipeline, in
        that order), or None when that cannot be done here (an old Redis, the script not
        loaded yet: the caller then makes the two calls, which load it)."""
        scripts = bull.scripts
        script = scripts.commands.get("getStateV2") if scripts is not None else None
        if script is None or script.sha is None:
            return None
        version = await bull.backend.connection.getRedisVersion()
        if version is None or isRedisVersionLowerThan(version, "6.0.6"):
            return None
        # The keys of bullmq's own `Scripts.getState`, in its order.
        keys = scripts.getKeys(
            ["completed", "failed", "delayed", "active", "wait", "paused",
             "waiting-children", "prioritized"]
        )  # fmt: skip
        job_key = scripts.toKey(job_id)
        pipe = (await self.client()).pipeline(transaction=False)
        pipe.evalsha(script.sha, len(keys), *keys, job_id, job_key)
        pipe.hgetall(job_key)
        state, raw = await pipe.execute(raise_on_error=False)
        if isinstance(state, Exception) or isinstance(raw, Exception):
            return None  # NOSCRIPT (a restarted Redis): the two calls reload the script
        return state, raw

    async def recent_jobs(self, queue: str, limit: int = 50) -> list[JobInfo]:
        """The queue's latest jobs of every BullMQ state, newest enqueue first (the web
        monitor's list): up to `limit` ids from each state's list or sorted set, one pipelined
        HGETALL for them all."""
        sources = (
            ("active", False), ("wait", False), ("prioritized", True), ("delayed", True),
            ("completed", True), ("failed", True),
        )  # fmt: skip
        async with self._errors():
            client = await self.client()
            async with client.pipeline(transaction=False) as pipe:
                for state, is_zset in sources:
                    key = self.key(queue, state)
                    if is_zset:
                        pipe.zrevrange(key, 0, limit - 1)
                    else:
                        pipe.lrange(key, 0, limit - 1)
                id_lists = await pipe.execute()
            found = [
                (str(job_id), state)
                for (state, _), ids in zip(sources, id_lists, strict=True)
                for job_id in ids
            ]
            async with client.pipeline(transaction=False) as pipe:
                for job_id, _ in found:
                    pipe.hgetall(self.key(queue, job_id))
                hashes = await pipe.execute()
        jobs = [
            job_info(queue, job_id, dict(raw), state)
            for (job_id, state), raw in zip(found, hashes, strict=True)
            if raw
        ]
        jobs.sort(key=lambda j: j.enqueued_at_ms, reverse=True)
        return jobs[:limit]

    async def counts(self, queue: str) -> QueueCounts:
        async with self._errors():
            bull = await self.queue(queue)
            raw = await bull.getJobCounts(
                "waiting", "prioritized", "paused", "waiting-children", "active", "delayed",
                "completed", "failed",
            )  # fmt: skip
            dead = await self._marked_count(queue, "pikku:dead", "dead_lettered")
            cancelled = await self._marked_count(queue, "pikku:cancelled", "cancelled")
            # Each BullMQ job scheduler keeps one next run delayed: pikku_queue.counts.
            schedulers = int(await (await self.client()).zcard(self.key(queue, "repeat")))
        failed = int(raw.get("failed", 0))
        return QueueCounts(
            waiting=sum(
                int(raw.get(k, 0)) for k in ("waiting", "prioritized", "paused", "waiting-children")
            ),
            active=int(raw.get("active", 0)),
            delayed=int(raw.get("delayed", 0)),
            completed=int(raw.get("completed", 0)),
            failed=max(failed - dead - cancelled, 0),
            dead_lettered=dead,
            cancelled=cancelled,
            scheduled=min(schedulers, int(raw.get("delayed", 0))),
        )

    async def _marked_count(self, queue: str, suffix: str, mark: str) -> int:
        """Dead-lettered (or cancelled) jobs still in BullMQ's failed set (a replayed one
        leaves that set), from the index `pikku:dead` (`pikku:cancelled`).

        The index only names candidates: each one's own job hash must still carry the mark.
        BullMQ's `obliterate` (Node, Bull Board) deletes every job hash but not this index,
        and ids restart at 1, so a new job that failed under a reused id would otherwise
        count as dead-lettered; such stale entries are dropped here instead."""
        client = await self.client()
        index = self.key(queue, suffix)
        members = [str(m) for m in await client.zrange(index, 0, -1)]
        if not members:
            return 0
        scores = await client.zmscore(self.key(queue, "failed"), members)
        async with client.pipeline(transaction=False) as pipe:
            for member in members:
                pipe.hget(self.key(queue, member), OUTCOME_FIELD)
            outcomes = await pipe.execute()
        stale = [m for m, outcome in zip(members, outcomes, strict=True) if outcome != mark]
        if stale:
            await client.zrem(index, *stale)
        return sum(
            1
            for score, outcome in zip(scores, outcomes, strict=True)
            if score is not None and outcome == mark
        )

    async def mark_final(
        self, queue: str, job_id: str, outcome: str, error: dict[str, str]
    ) -> None:
        """Record why a job failed for good before BullMQ moves it to its failed set."""
        client = await self.client()
        async with client.pipeline(transaction=True) as pipe:
            pipe.hset(
                self.key(queue, job_id),
                mapping={
                    OUTCOME_FIELD: outcome,
                    ERROR_FIELD: dump_json(error, escape_lone_surrogates=True),
                },
            )
            index = {"dead_lettered": "pikku:dead", "cancelled": "pikku:cancelled"}.get(outcome)
            if index is not None:
                marked = self.key(queue, index)
                pipe.zadd(marked, {job_id: int(time.time() * 1000)})
                pipe.zremrangebyrank(marked, 0, -DEAD_SET_LIMIT - 1)
            await pipe.execute()

    # -- cancel ------------------------------------------------------------------------

    async def cancel_job(self, queue: str, job_id: str) -> CancelResult:
        """`CancelsJobs`. A waiting or delayed job goes through BullMQ's own removal (what
        Node's `job.remove()` runs: a Node worker or dashboard then finds it gone); BullMQ
        refuses to remove a locked job, so a running one gets `CANCEL_FIELD` in its hash
        instead, set by a script only while its lock is held, for the worker that holds the
        lock to see (`consumer`). A job that changes state between the two steps is looked at
        again."""
        async with self._errors():
            bull = await self.queue(queue)
            client = await self.client()
            for _ in range(CANCEL_TRIES):
                state = str(await bull.getJobState(job_id))
                if state in ("unknown", "None"):
                    return CancelResult.NOT_FOUND
                if state in ("completed", "failed"):
                    return CancelResult.FINISHED
                if state == "active":
                    flagged = await client.eval(
                        _FLAG_CANCEL, 3, self.key(queue, job_id),
                        self.key(queue, f"{job_id}:lock"), self.key(queue, "active"),
                        CANCEL_FIELD, job_id,
                    )  # fmt: skip
                    if flagged:
                        return CancelResult.REQUESTED
                    continue  # its attempt ended meanwhile
                removed = await bull.remove(job_id)
                if removed == 1:
                    await client.zrem(self.key(queue, "pikku:dead"), job_id)
                    return CancelResult.REMOVED
                if removed == REMOVE_SCHEDULER_JOB:
                    return CancelResult.SCHEDULED
            # it kept changing state under us: flagged, or ended
            flagged = await self._flagged(queue, job_id)
            return CancelResult.REQUESTED if flagged else CancelResult.FINISHED

    async def _flagged(self, queue: str, job_id: str) -> bool:
        return bool(await (await self.client()).hexists(self.key(queue, job_id), CANCEL_FIELD))

    async def cancel_flags(self, queue: str, job_ids: Sequence[str]) -> set[str]:
        """Which of `job_ids` carry a cancel request (one pipelined HEXISTS each)."""
        if not job_ids:
            return set()
        client = await self.client()
        async with client.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.hexists(self.key(queue, job_id), CANCEL_FIELD)
            found = await pipe.execute()
        return {job_id for job_id, yes in zip(job_ids, found, strict=True) if yes}

    async def finished_since(self, queue: str, since_ms: int) -> list[FinishedJob]:
        async with self._errors():
            client = await self.client()
            finished: list[FinishedJob] = []
            for state, succeeded in (("completed", True), ("failed", False)):
                found = await client.zrangebyscore(
                    self.key(queue, state), since_ms, "+inf", start=0, num=FINISHED_SCAN_LIMIT
                )
                ids = [str(job_id) for job_id in found]
                if not ids:
                    continue
                async with client.pipeline(transaction=False) as pipe:
                    for job_id in ids:
                        pipe.hmget(self.key(queue, job_id), "timestamp", "finishedOn")
                    rows = await pipe.execute()
                for enqueued, done in rows:
                    if stored_count(enqueued) and stored_count(done):
                        finished.append(
                            FinishedJob(stored_count(enqueued), stored_count(done), succeeded)
                        )
        finished.sort(key=lambda job: job.finished_at_ms)
        return finished

    async def dead_letters(self, dlq: str, limit: int = 100) -> list[DeadLetterRecord]:
        async with self._errors():
            bull = await self.queue(dlq)
            jobs = await bull.getJobs(
                ["waiting", "prioritized", "paused", "delayed"], 0, max(limit - 1, 0), True
            )
        records = [
            DeadLetterRecord.from_payload(str(job.id), job.data)
            for job in jobs
            if isinstance(job.data, dict) and "queue" in job.data and "job_id" in job.data
        ]
        records.sort(key=lambda record: (record.failed_at_ms, record.id))
        return (await self._live(dlq, records))[:limit]

    async def _live(self, dlq: str, records: list[DeadLetterRecord]) -> list[DeadLetterRecord]:
        """The records whose job is still dead-lettered here. A job retried elsewhere (Bull
        Board, Node's `job.retry()`) is not: while it waits or is delayed again its record is
        not listed (nor replayed); once it completed, the record is removed and the job's hash
        loses pikkugen's outcome fields. An older record of a job dead-lettered again is not
        listed either. A job whose hash is gone (BullMQ's removeOnFail, clean) keeps its record
        (replay re-adds it); an active job's record is listed (its verdict may be being
        written right now)."""
        if not records:
            return records
        client = await self.client()
        async with client.pipeline(transaction=False) as pipe:
            for record in records:
                key = self.key(record.queue, record.job_id)
                pipe.exists(key)
                pipe.zscore(self.key(record.queue, "completed"), record.job_id)
                pipe.zscore(self.key(record.queue, "failed"), record.job_id)
                pipe.lpos(self.key(record.queue, "active"), record.job_id)
            replies = await pipe.execute()
        newest = {(r.queue, r.job_id): r.id for r in records}  # sorted oldest first
        live: list[DeadLetterRecord] = []
        for index, record in enumerate(records):
            exists, completed, failed, active = replies[index * 4 : index * 4 + 4]
            if not exists or active is not None:
                live.append(record)
            elif completed is not None:
                await self._forget_stale(dlq, record)
            elif failed is not None and newest[(record.queue, record.job_id)] == record.id:
                live.append(record)
        return live

    async def _forget_stale(self, dlq: str, record: DeadLetterRecord) -> None:
        """A record whose job completed after a retry elsewhere: removed, with the job's
        stale outcome fields."""
        with contextlib.suppress(Exception):  # a listing never fails for its clean-up
            client = await self.client()
            await client.hdel(self.key(record.queue, record.job_id), OUTCOME_FIELD, ERROR_FIELD)
            await client.zrem(self.key(record.queue, "pikku:dead"), record.job_id)
            await (await self.queue(dlq)).remove(record.id)

    async def replay(self, dlq: str, ids: Sequence[str] | None = None) -> int:
        """Send dead-lettered jobs back. The original job is retried in place when BullMQ still
        holds it (same id, so a waiting `JobHandle` sees it finish); otherwise it is re-added
        under its old id."""
        async with self._errors():
            wanted = set(ids) if ids is not None else None
            replayed = 0
            while True:
                records = await self.dead_letters(dlq, limit=1000)
                batch = [r for r in records if wanted is None or r.id in wanted]
                if not batch:
                    return replayed
                for record in batch:
                    await self._replay_one(dlq, record)
                    replayed += 1
                if wanted is not None:
                    return replayed

    async def _replay_one(self, dlq: str, record: DeadLetterRecord) -> None:
        client = await self.client()
        source = await self.queue(record.queue)
        state = await source.getJobState(record.job_id)
        if state == "failed":
            await self.retry_failed_in_place(record.queue, record.job_id)
        elif state in ("unknown", None):
            opts = job_options(
                EnqueueRequest(record.queue, record.payload, job_id=record.job_id),
                self.options_for(record.queue),
            )
            raw = raw_original(record.payload_encoding, record.payload)
            if raw is None:
                await source.add(record.queue, record.payload, opts)
            else:
                await self._add_raw(source, record.job_id, raw, opts)
        await client.zrem(self.key(record.queue, "pikku:dead"), record.job_id)
        await (await self.queue(dlq)).remove(record.id)

    async def _add_raw(
        self, source: Queue, job_id: str, raw: str | bytes, opts: dict[str, Any]
    ) -> None:
        """Re-add a job whose payload the engine could not read with its `data` field holding
        that payload as it was (BullMQ's add writes the JSON of a value): the add and the
        overwrite go in one MULTI, so no worker can take the job in between."""
        job = Job(source, source.name, None, {**source.jobsOpts, **opts})
        bull = source.backend  # as BullMQ's own addJobs: its scripts, queued in one MULTI
        async with bull.connection.conn.pipeline(transaction=True) as pipe:
            await bull.scripts.addJob(job, pipe)
            pipe.hset(self.key(source.name, job_id), "data", raw)
            await pipe.execute()

    async def add_dead_letter(self, dlq: str, record: DeadLetterRecord) -> bool:
        """Store a record in the dead-letter queue (a plain BullMQ queue), in the first form
        of the total writer (`payloads.dead_letter_forms`); False when it has none (the
        caller then ends the job `failed`). Its id is derived from the failed job, so a worker
        that dies after this and re-runs the job does not write the record twice."""
        text = next(dead_letter_forms(record), None)
        if text is None:
            return False
        queue = await self.queue(dlq)
        await queue.add(dlq, json.loads(text), {"jobId": record.id})
        return True

    @contextlib.asynccontextmanager
    async def watch_job(self, queue: str, job_id: str) -> AsyncIterator[JobWatch]:
        """`WatchesJobs`: woken by BullMQ's events stream when the job changes, through the
        queue's one shared reader on this event loop (`events`)."""
        key = (asyncio.get_running_loop(), queue)
        reader = self._event_readers.get(key)
        if reader is None:

            def forget(done: EventsReader) -> None:
                if self._event_readers.get(key) is done:
                    del self._event_readers[key]

            reader = self._event_readers[key] = EventsReader(
                self.key(queue, "events"), lambda: new_client(self.settings), forget
            )
        async with reader.watch(job_id) as watch:
            yield watch

    # -- consumer face -----------------------------------------------------------------

    async def run_worker(self, options: WorkerOptions) -> WorkerReport:
        tracing.set_system(self.url)
        return await RedisWorker(self, options).run()

    async def close(self) -> None:
        """Close this event loop's connection (others close when their loop shuts down)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        for reader in [r for (on, _), r in self._event_readers.items() if on is loop]:
            await reader.stop()
        connection = self._connections.pop(loop, None)
        if connection is not None:
            await connection.close()


class _LoopConnection:
    """One event loop's client and BullMQ queues, closed when that loop shuts down.

    `enqueue_sync` from Django or Flask runs each call in `asyncio.run`, a new loop every time,
    and nobody calls `close()` there. An async generator parked in the loop is what
    `asyncio.run` finalises on its way out (`shutdown_asyncgens`), so its `finally` closes the
    client inside the right loop: no leaked sockets, no ResourceWarning.
    """

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self.queues: dict[str, Queue] = {}
        self._guard: AsyncGenerator[None, None] | None = None
        self._closed = False

    async def open(self, forget: Callable[[], object]) -> None:
        async def guard() -> AsyncGenerator[None, None]:
            try:
                yield
            finally:
                forget()
                await self._close_client()

        self._guard = guard()
        await anext(self._guard)

    async def _close_client(self) -> None:
        if not self._closed:
            self._closed = True
            with contextlib.suppress(Exception):
                await self.client.aclose()

    async def close(self) -> None:
        guard, self._guard = self._guard, None
        if guard is not None:
            with contextlib.suppress(Exception):
                await guard.aclose()
        await self._close_client()


def from_url(url: str) -> RedisBackend:
    """The factory `pikku_queue.adapters.connect` calls for redis:// and rediss:// URLs."""
    return RedisBackend(url)
