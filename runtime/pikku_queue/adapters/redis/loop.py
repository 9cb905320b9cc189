"""Our lean worker loop over bullmq-python's `Worker`: completing a job fetches the next one.

bullmq-python completes a job with BullMQ's `moveToFinished` script asking for no next job, then
runs `moveToActive` for the next: two Lua calls and two round trips per job, plus the task churn
of its run loop (a new `getNextJob` task per job). Node BullMQ asks `moveToFinished` to fetch
the next job (its `fetch next` argument): the job just finished hands its slot straight to the
next one in the same round trip. `LeanWorker` does the same: each of the `concurrency` slots
keeps one task that completes a job and carries on with the job the script returned, under the
same lock token (as Node does), until the queue has none to give; only then does the slot go
back to bullmq-python's loop, which waits on BullMQ's marker as before.

The completions of all slots are pipelined: bullmq-python talks to Redis over one connection,
one command and its reply at a time, so 50 slots finishing together would wait 50 round trips.
`_Pipeline` sends the moveToFinished calls of one loop turn as one batch (one write, one read,
on a connection of its own), each caller getting its own reply; up to `_IN_FLIGHT` batches are
on the wire at once, so slots whose jobs finish while one batch is out send theirs at once
(Redis runs one batch while the worker prepares the next) instead of waiting for its reply.

Everything else stays bullmq-python's, unchanged: `moveToActive` for a slot's first job, job
locks (its `LockManager` renews every active job's lock in one `extendLocks` call per interval),
stalled-job checks, failures and retries (`Job.moveToFailed`), pausing and closing. The scripts
are BullMQ's own (shipped in the `bullmq` package), so the wire format is BullMQ's.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import msgpack  # type: ignore[import-untyped]  # bullmq depends on it; no stubs
from bullmq import Worker
from bullmq.custom_errors import DelayedError, UnrecoverableError, WaitingChildrenError
from bullmq.scripts import raw2NextJobData
from redis.exceptions import NoScriptError, ResponseError

from pikku_queue.payloads import dump_json

from .packing import fast_packing

#: The keys `moveToFinished` takes before the job's own, for a completed job.
_FINISH_KEYS = (
    "wait", "active", "prioritized", "events", "stalled", "limiter", "delayed", "paused",
    "meta", "pc", "completed",
)  # fmt: skip


_COUNT = re.compile(r"0|-?[1-9][0-9]{0,18}")
#: How far down the active list a failed fetch looks for the job it made active.
_ACTIVE_SCAN = 200
#: Most commands sent in one pipelined batch.
_MAX_BATCH = 256
#: Most pipelined batches of one script on the wire at once: while one is out, the slots whose
#: jobs finished meanwhile send theirs instead of waiting for its reply.
_IN_FLIGHT = 2


class _Pipeline:
    """Batches calls of one BullMQ script: a call goes out on the next loop turn, with every
    call made meanwhile, while fewer than `_IN_FLIGHT` batches are on the wire (each on a
    connection of its own); calls made while that many are out go together when one returns.
    Each caller gets its own reply or error."""

    def __init__(self, client: Any, script: Any) -> None:
        self.client = client
        self.script = script
        self.pending: list[tuple[list[Any], list[Any], asyncio.Future[Any]]] = []
        #: Sender tasks running (each sends one batch at a time, then what has gathered).
        self.senders: set[asyncio.Task[None]] = set()
        #: The sender waiting for this loop turn's calls to join its batch, if any.
        self.gathering: asyncio.Task[None] | None = None

    def call(self, keys: list[Any], args: list[Any]) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending.append((keys, args, future))
        self._start()
        return future

    def _start(self) -> None:
        if self.pending and self.gathering is None and len(self.senders) < _IN_FLIGHT:
            task = self.gathering = asyncio.ensure_future(self._send())
            self.senders.add(task)
            task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        """A sender ended (also when cancelled before it ran): never strand a caller."""
        self.senders.discard(task)
        if self.gathering is task:
            self.gathering = None
        self._start()

    async def _send(self) -> None:
        try:
            await asyncio.sleep(0)  # let the other slots finishing in this turn join
        finally:
            self.gathering = None
        while self.pending:
            batch, self.pending = self.pending[:_MAX_BATCH], self.pending[_MAX_BATCH:]
            await self._send_batch(batch)

    async def _send_batch(
        self, batch: list[tuple[list[Any], list[Any], asyncio.Future[Any]]]
    ) -> None:
        try:
            # EVALSHA straight away: a pipeline given the Script object would first ask
            # SCRIPT EXISTS on every batch (one more round trip). A server that lost the
            # script (a restart, SCRIPT FLUSH) answers NOSCRIPT: those calls go one by one
            # through the Script, which loads it.
            pipe = self.client.pipeline(transaction=False)
            sha = self.script.sha
            for keys, args, _ in batch:
                pipe.execute_command("EVALSHA", sha, len(keys), *keys, *args)
            replies = await pipe.execute(raise_on_error=False)
            for index, ((keys, args, _), reply) in enumerate(zip(batch, replies, strict=True)):
                if isinstance(reply, NoScriptError):
                    try:
                        replies[index] = await self.script(keys=keys, args=args)
                    except Exception as exc:  # that caller's own error
                        replies[index] = exc
        except BaseException as exc:
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else RuntimeError(exc))
            if not isinstance(exc, Exception):
                raise
            return
        for (_, _, future), reply in zip(batch, replies, strict=True):
            if future.done():
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)


def _is_count(value: Any) -> bool:
    """Whether Redis's HINCRBY takes `value`: a 64-bit integer's decimal text, as Redis reads
    it (no sign but `-`, no leading zero)."""
    if not isinstance(value, str) or _COUNT.fullmatch(value) is None:
        return False
    return -(2**63) <= int(value) < 2**63


def _keep_jobs(remove: Any) -> dict[str, Any]:
    """BullMQ's `keepJobs` for a removeOnComplete setting (as bullmq-python computes it)."""
    if type(remove) is int:
        return {"count": remove}
    if isinstance(remove, dict):
        return remove
    return {"count": 0} if remove else {"count": -1}


class LeanWorker(Worker):  # type: ignore[misc]  # bullmq ships no type hints
    """bullmq-python's Worker whose completions fetch the next job (see the module doc)."""

    _finish_keys: list[str] | None = None
    _finisher: _Pipeline | None = None

    def __init__(self, name: str, processor: Any, opts: dict[str, Any]) -> None:
        super().__init__(name, processor, opts)
        for client in (self.client, self.bclient):
            if client is not None:
                fast_packing(client)

    def _complete_keys(self, job_id: str) -> list[str]:
        keys = self._finish_keys
        if keys is None:
            keys = self._finish_keys = [self.scripts.keys[name] for name in _FINISH_KEYS]
        return [
            *keys,
            self.scripts.toKey(job_id),
            self.scripts.toKey("metrics:completed"),
            self.scripts.keys["marker"],
        ]

    async def _complete(self, job: Any, result: Any, token: str, fetch_next: bool) -> Any:
        """BullMQ's moveToFinished to completed; the next job's raw data when `fetch_next`."""
        opts = self.opts
        metrics = opts.get("metrics")
        packed: dict[str, Any] = {
            "token": token,
            "keepJobs": _keep_jobs(job.opts.get("removeOnComplete", False)),
            "limiter": opts.get("limiter"),
            "lockDuration": opts.get("lockDuration"),
            "attempts": job.attempts,
            "attemptsMade": job.attemptsMade,
            "maxMetricsSize": metrics.get("maxDataPoints", "") if metrics else "",
            "fpof": job.opts.get("failParentOnFailure", False),
            "cpof": job.opts.get("continueParentOnFailure", False),
            "idof": job.opts.get("ignoreDependencyOnFailure", False),
            "rdof": job.opts.get("removeDependencyOnFailure", False),
        }
        if self.workerName:  # the next job's processedBy, as moveToActive sets it
            packed["name"] = self.workerName
        finished_on = round(time.time() * 1000)
        args = [
            job.id,
            finished_on,
            "returnvalue",
            dump_json(result),
            "completed",
            "1" if fetch_next else "",
            self.scripts.keys[""],
            msgpack.packb(packed, use_bin_type=True),
        ]
        finisher = self._finisher
        if finisher is None:
            script = self.scripts.commands["moveToFinished"]
            finisher = self._finisher = _Pipeline(self.scripts.redisClient, script)
        try:
            raw = await finisher.call(self._complete_keys(job.id), args)
        except ResponseError:
            # The script failed fetching the next job (BullMQ's scripts stop at the first
            # error and keep what they wrote): when this job was finished, the next one is
            # active under `token` already, and is carried on with here.
            found = await self._stuck_activation(token) if fetch_next else None
            if found is None or found[1] == str(job.id):
                raise
            job_data, job_id = found
            raw = [[item for pair in job_data.items() for item in pair], job_id, 0, 0]
        if type(raw) is int and raw < 0:
            raise self.scripts.finishedErrors(
                {"code": raw, "jobId": job.id, "command": "moveToFinished", "state": "active"}
            )
        job.finishedOn = finished_on
        return raw

    async def _stuck_activation(self, token: str) -> tuple[dict[str, Any], str] | None:
        """The job BullMQ's script made active under `token` and then failed on: its start
        count `ats` is not an integer (the script's HINCRBY of it raised). Looked for near the
        head of the active list, where the script pushed it; several slots may share a token,
        so the broken count is what names it. Returns its hash and id, if found."""
        client = self.scripts.redisClient
        for job_id in await client.lrange(self.scripts.keys["active"], 0, _ACTIVE_SCAN - 1):
            key = self.scripts.toKey(str(job_id))
            lock, started = await client.get(f"{key}:lock"), await client.hget(key, "ats")
            if lock != token or started is None or _is_count(started):
                continue
            job_data = await client.hgetall(key)
            return ({str(k): v for k, v in job_data.items()}, str(job_id)) if job_data else None
        return None

    async def processJob(self, job: Any, token: str) -> None:
        """Run `job`, then each job its completion fetched, in this one task (one slot)."""
        while job is not None:
            job = await self._run_one(job, token)

    async def _run_one(self, job: Any, token: str) -> Any:
        """bullmq-python's processJob for one job; returns the next job to run, if fetched."""
        raw: Any = None
        try:
            if "removeOnComplete" not in job.opts and "removeOnComplete" in self.opts:
                job.opts["removeOnComplete"] = self.opts["removeOnComplete"]
            if "removeOnFail" not in job.opts and "removeOnFail" in self.opts:
                job.opts["removeOnFail"] = self.opts["removeOnFail"]
            self.jobs.add((job, token))
            controller = self.lockManager.track_job(
                job.id,
                token,
                int(time.time() * 1000),
                should_create_controller=self._processor_wants_signal,
            )
            if job.deferredFailure:
                await job.moveToFailed(UnrecoverableError(job.deferredFailure), token)
                self.emit("failed", job, UnrecoverableError(job.deferredFailure))
                return None
            if controller is not None:
                result = await self.processor(job, token, controller.signal)
            else:
                result = await self.processor(job, token)
            if not self.forceClosing:
                fetch_next = not (self.closing or self.paused)
                raw = await self._complete(job, result, token, fetch_next)
                job.returnvalue = result
                job.attemptsMade = job.attemptsMade + 1
            self.emit("completed", job, result)
        except (DelayedError, WaitingChildrenError):
            return None
        except Exception as err:
            try:
                if not self.forceClosing:
                    await job.moveToFailed(err, token)
                self.emit("failed", job, err)
            except Exception as error:
                self.emit("error", error, job)
            return None
        finally:
            self.jobs.discard((job, token))
            self.lockManager.untrack_job(job.id)
        if not raw:
            return None
        job_data, job_id, limit_until, delay_until = raw2NextJobData(raw)
        following = await self.nextJobFromJobData(
            job_data, job_id, limit_until or 0, delay_until or 0, token
        )
        if following is not None:
            self.emit("active", following, "waiting")
        return following
