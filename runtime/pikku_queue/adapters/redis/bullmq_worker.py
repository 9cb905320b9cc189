"""The BullMQ `Worker` class a runner starts: the lean loop (`loop`), loading every job it is
handed and naming itself as BullMQ does.

Kept apart from the runner (`consumer`) because this is where a job hash becomes a bullmq
`Job`: what bullmq-python cannot parse is caught here, before any callback of ours runs, and
marked on the job (`INVALID_PAYLOAD_ATTR`) for the runner and the settling to read.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from redis.exceptions import ResponseError

from pikku_queue.fields import InvalidRecord, integer
from pikku_queue.outcomes import ErrorInfo
from pikku_queue.payloads import UndecodablePayload, decode_payload

from .jobs import payload_error
from .loop import LeanWorker
from .stored import REPAIR_SCRIPT, STALE_OUTCOME_FIELDS, check_job_hash, repair_args
from .tooling import move_to_active_as, worker_client_name

logger = logging.getLogger("pikku_queue.redis")

#: Where `PikkuWorker` leaves the `UndecodablePayload` of a job whose data is not JSON.
INVALID_PAYLOAD_ATTR = "pikku_invalid_payload"
#: Where `PikkuWorker` leaves the `InvalidRecord` of a job with another field it refused.
INVALID_RECORD_ATTR = "pikku_invalid_record"
#: Where `PikkuWorker` leaves the job's stored `opts` text, as the fetch returned it: the runner
#: decides from it whether the declared retry options must be written, without reading it again.
STORED_OPTS_ATTR = "pikku_stored_opts"
#: The hash a job is loaded from when bullmq-python still refuses the checked one (a field
#: no check knows): every field it parses at BullMQ's default.
_MINIMAL_HASH = {"opts": "{}", "timestamp": "0", "delay": "0", "priority": "0"}
#: The longest a rate-limited slot waits before asking again (Node's maximumRateLimitDelay).
MAX_RATE_LIMIT_WAIT_S = 30.0
#: A rate-limited slot's wait is cut into steps this long, so a closing worker ends it.
_WAIT_STEP_S = 0.1


class PikkuWorker(LeanWorker):
    """BullMQ's Worker, loading a job whose data is not JSON instead of choking on it.

    bullmq-python parses the job hash (`Job.fromJSON`) in `nextJobFromJobData`, after its Lua
    script made the job active and before any callback of ours runs. A parse error there only
    reaches the worker's "error" event: the job stays active with no lock renewal, stalls,
    comes back and fails the same way for ever (never reaching a DLQ, and a burst worker never
    ends). Here such a job loads with its raw text as `data` and the parse error in
    `INVALID_PAYLOAD_ATTR`, so our processor callback dead-letters it like any bad payload.
    Data that is not UTF-8 is refused the same way, even when it would parse (a JSON string
    holding the invalid bytes): no processor should receive the surrogates that stand for them.

    Every other field bullmq-python or BullMQ's scripts read is decoded first
    (`stored.check_job_hash`): a refused one is repaired in the stored hash under the job's
    lock, and the job loads with the `InvalidRecord` in `INVALID_RECORD_ATTR`, for an
    `invalid_record` verdict naming the field. Outcome fields pikkugen left from an earlier
    attempt (the job was retried elsewhere since) are removed at the same time.

    It also names itself as BullMQ does (`tooling`), so Node's `getWorkers()` and Bull Board
    list it, and BullMQ's moveToActive records it in each job's `processedBy`.
    """

    def __init__(self, name: str, processor: Any, opts: dict[str, Any]) -> None:
        super().__init__(name, processor, opts)
        if self.workerName:
            self.clientName = worker_client_name(opts["prefix"], name, self.workerName)

    async def runStalledJobsCheck(self) -> None:
        """bullmq-python's stalled-job check, made total and counted: a stall counter (`stc`)
        that is not an integer would make BullMQ's script fail half-way (after it took the job
        off the active list: the job would be in no list at all), so one is reset first; and
        the jobs recovered (put back to wait because their lock expired: the worker holding
        them died or lost it) are logged, one INFO line per check that found any."""
        try:
            await self._reset_bad_stall_counters()
            stalled = await self.backend.moveStalledJobsToWait(
                self.opts.get("maxStalledCount"), self.opts.get("stalledInterval")
            )
            if stalled:
                logger.info(
                    "%s: recovered %d stalled job(s) whose lock had expired (the worker holding"
                    " them died or lost it); they run again",
                    self.name, len(stalled),
                )  # fmt: skip
            for job_id in stalled:
                self.emit("stalled", job_id)
        except Exception as exc:
            self.emit("error", exc)

    async def _reset_bad_stall_counters(self) -> None:
        client = self.scripts.redisClient
        candidates = list(await client.smembers(self.scripts.keys["stalled"]))
        if not candidates:
            return
        async with client.pipeline(transaction=False) as pipe:
            for job_id in candidates:
                pipe.hget(self.scripts.toKey(str(job_id)), "stc")
            counters = await pipe.execute()
        for job_id, counter in zip(candidates, counters, strict=True):
            if counter is None:
                continue
            try:
                integer("stc", counter)
            except InvalidRecord as exc:
                logger.warning("%s job %s: %s; reset to 0", self.name, job_id, exc)
                await client.hset(self.scripts.toKey(str(job_id)), "stc", "0")

    async def getNextJob(self, token: str) -> Any:
        """bullmq-python's, plus BullMQ's rate limit: when moveToActive said the queue's
        window is full (its `limitUntil`, ms), wait that long and ask again, as Node's worker
        does. bullmq-python records it and blocks on the queue's marker instead, which a full
        window never sets: it asked again only when that block timed out (`drainDelay`), so a
        limit of many starts per short window ran at one window per block."""
        wait_ms: int = getattr(self, "limitUntil", 0) or 0
        if wait_ms <= 0:
            return await super().getNextJob(token)
        self.limitUntil = 0
        loop = asyncio.get_running_loop()
        until = loop.time() + min(wait_ms / 1000, MAX_RATE_LIMIT_WAIT_S)
        while not (self.closing or self.paused):
            left = until - loop.time()
            if left <= 0:
                break
            await asyncio.sleep(min(left, _WAIT_STEP_S))
        if self.closing or self.paused:
            return None
        job = await self.moveToActive(token)
        if job:
            self.emit("active", job, "waiting")
        return job

    async def moveToActive(self, token: str) -> Any:
        try:
            if not self.workerName:
                return await super().moveToActive(token)
            result = await move_to_active_as(
                self.backend.scripts, token, self.opts, self.workerName
            )
        except ResponseError:
            # BullMQ's script failed after it made a job active under `token` (its `ats` is not
            # an integer): that job is loaded here, its field refused, instead of staying
            # active untracked, stalling, and failing the same way at every fetch.
            found = await self._stuck_activation(token)
            if found is None:
                raise
            return await self.nextJobFromJobData(found[0], found[1], 0, 0, token)
        job_data, job_id, limit_until, delay_until = result or (None, None, 0, 0)
        return await self.nextJobFromJobData(
            job_data, job_id, limit_until or 0, delay_until or 0, token
        )

    async def nextJobFromJobData(
        self,
        job_data: dict[str, Any] | None = None,
        job_id: str | None = None,
        limit_until: int = 0,
        delay_until: int = 0,
        token: str | None = None,
    ) -> Any:
        if job_data is None or job_id is None:
            return await self._load(job_data, job_id, limit_until, delay_until, token)
        checked = check_job_hash(job_data)
        stale = [name for name in STALE_OUTCOME_FIELDS if name in job_data]
        repairs = {**dict.fromkeys(stale), **checked.repairs}
        for name in stale:
            checked.raw.pop(name, None)
        if repairs:
            await self._repair(str(job_id), token, repairs)
        invalid = checked.invalid
        try:
            job = await self._load(checked.raw, job_id, limit_until, delay_until, token)
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
            # A field no check knows: the job still loads, and still gets a verdict.
            invalid = invalid or InvalidRecord("hash", exc, "bullmq-python cannot load the job")
            minimal = {**_MINIMAL_HASH, "data": "null"}
            job = await super().nextJobFromJobData(minimal, job_id, limit_until, delay_until, token)
        if job is not None:
            setattr(job, STORED_OPTS_ATTR, checked.raw.get("opts"))
            if invalid is not None:
                setattr(job, INVALID_RECORD_ATTR, invalid)
        return job

    async def _repair(self, job_id: str, token: str | None, repairs: dict[str, str | None]) -> None:
        """Write `repairs` into the job's hash while it is active under `token`."""
        key = self.scripts.toKey(job_id)
        try:
            client = self.scripts.redisClient
            await client.eval(
                REPAIR_SCRIPT, 2, key, f"{key}:lock", *repair_args(token or "", repairs)
            )
        except Exception as exc:  # the verdict still comes; a later delivery repairs again
            logger.warning("%s: cannot repair job %s (%s): %s", self.name, job_id, repairs, exc)

    async def _load(
        self,
        job_data: dict[str, Any] | None,
        job_id: str | None,
        limit_until: int,
        delay_until: int,
        token: str | None,
    ) -> Any:
        """A job from its (checked) hash; data that is not JSON loads as its text."""
        raw = None if job_data is None else job_data.get("data")
        if job_data is None or not isinstance(raw, str):  # no job, or no data (reads as `{}`)
            return await super().nextJobFromJobData(
                job_data, job_id, limit_until, delay_until, token
            )
        try:
            decode_payload(raw)  # the one strict reader: also NaN, Infinity, lone surrogates
        except UndecodablePayload as exc:
            refused: UndecodablePayload | None = exc
        else:
            refused = None
            try:
                return await super().nextJobFromJobData(
                    job_data, job_id, limit_until, delay_until, token
                )
            except (ValueError, RecursionError) as exc:
                if payload_error(raw) is None:  # another field of the hash is broken
                    raise
                refused = UndecodablePayload(raw, ErrorInfo.from_exception(exc))
        # A failed call wrote nothing (the job is active under `token` already): load it again
        # without its data.
        job = await super().nextJobFromJobData(
            {**job_data, "data": "null"}, job_id, limit_until, delay_until, token
        )
        if job is not None and refused is not None:
            job.data = refused.stored
            setattr(job, INVALID_PAYLOAD_ATTR, refused)
        return job
