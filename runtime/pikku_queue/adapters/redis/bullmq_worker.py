"""The BullMQ `Worker` class a runner starts: the lean loop (`loop`), loading every job it is
handed and naming itself as BullMQ does.

Kept apart from the runner (`consumer`) because this is where a job hash becomes a bullmq
`Job`: what bullmq-python cannot parse is caught here, before any callback of ours runs, and
marked on the job (`INVALID_PAYLOAD_ATTR`) for the runner and the settling to read.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pikku_queue.outcomes import ErrorInfo
from pikku_queue.payloads import UndecodablePayload, decode_payload

from .jobs import payload_error
from .loop import LeanWorker
from .tooling import move_to_active_as, worker_client_name

#: Where `PikkuWorker` leaves the `ErrorInfo` of a job whose data is not JSON.
INVALID_PAYLOAD_ATTR = "pikku_invalid_payload"
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

    It also names itself as BullMQ does (`tooling`), so Node's `getWorkers()` and Bull Board
    list it, and BullMQ's moveToActive records it in each job's `processedBy`.
    """

    def __init__(self, name: str, processor: Any, opts: dict[str, Any]) -> None:
        super().__init__(name, processor, opts)
        if self.workerName:
            self.clientName = worker_client_name(opts["prefix"], name, self.workerName)

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
        if not self.workerName:
            return await super().moveToActive(token)
        result = await move_to_active_as(self.backend.scripts, token, self.opts, self.workerName)
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
