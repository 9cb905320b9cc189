"""Running processors on BullMQ workers, with the engine deciding every outcome.

BullMQ's `Worker` keeps what it is good at: fetching by priority and delay, job locks and
their renewal, stalled-job recovery, global concurrency. Each processor gets a runner: its
engine, its BullMQ worker (`bullmq_worker.PikkuWorker`) and the callback between them, which
hands each job to the engine (or to the `batching.Batcher` of a batch processor) and lets
`settle.Settler` translate the Outcome into BullMQ's verbs. `RedisWorker` runs the runners,
keeps them healthy and decides when a burst worker is done.

A worker whose run loop ends while it should be running (bullmq-python can stop after Redis
connection trouble) is replaced, so a Redis restart never leaves a silent worker behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from bullmq import DelayedError

from pikku_queue import observe
from pikku_queue.backend import WorkerOptions, WorkerReport
from pikku_queue.burst import BurstWatch
from pikku_queue.context import CancelSignal
from pikku_queue.engine import Engine
from pikku_queue.events import JobEvent
from pikku_queue.fields import InvalidRecord
from pikku_queue.outcomes import Delivery, Outcome
from pikku_queue.payloads import UndecodablePayload, dump_json
from pikku_queue.processor import Processor
from pikku_queue.records import CANCEL_POLL_S, EnqueueRequest

from .batching import Batcher
from .bullmq_worker import (
    INVALID_PAYLOAD_ATTR,
    INVALID_RECORD_ATTR,
    STORED_OPTS_ATTR,
    PikkuWorker,
)
from .connection import check_connection
from .jobs import (
    DECLARE_OPTS_SCRIPT,
    ENCODING_ERRORS,
    declared_opts,
    loads_or_text,
    retry_options_difference,
    trace_context_of,
)
from .settle import Settler, backoff_strategy
from .tooling import JobLogs, write_job_logs

if TYPE_CHECKING:
    from .backend import RedisBackend

logger = logging.getLogger("pikku_queue.redis")

#: Seconds between checks of `stop`, of burst completion and of the workers' health.
POLL_S = 0.1
#: Minutes of BullMQ metrics kept for a processor declared with `metrics=True` (two weeks).
METRICS_DATA_POINTS = 20_160
#: Seconds to wait before replacing a worker whose loop ended.
RESTART_DELAY_S = 0.5
#: The BullMQ job scheduler id of a processor's own `repeat` (schedulers live per queue).
PROCESSOR_SCHEDULER_ID = "pikku-processor"
#: The least time (ms) ready jobs wait with none active and none fetched before a burst worker
#: calls them out of reach (a lease length when longer): a loaded machine can take seconds.
OUT_OF_REACH_MIN_MS = 10_000
#: Most seconds a stopping worker spends on a last sweep (Redis may be the reason it stops).
FINAL_SWEEP_S = 5.0


class _QueueRunner:
    """One processor: its engine, its BullMQ worker, and the callback between them."""

    def __init__(self, owner: RedisWorker, processor: Processor) -> None:
        self.owner = owner
        self.backend = owner.backend
        self.processor = processor
        self.name = processor.name
        options = owner.options
        self.engine = Engine(processor, services=options.services, events=options.events)
        #: The lines `ctx.logger` logs during each job, for the job's BullMQ log.
        self.job_logs = JobLogs()
        batch = processor.options.batch
        self.batcher = (
            Batcher(self.engine, batch.size, batch.timeout, self.job_logs) if batch else None
        )
        self.worker: Any = None
        self.task: asyncio.Task[Any] | None = None
        self.settler = Settler(self.backend, processor, self.engine, owner.report, options.lease_ms)
        self.housekeeping: set[asyncio.Task[None]] = set()
        self.processor_log = self.engine.log.getChild(processor.name)  # what ctx.logger is
        self.job_logs.attach(self.processor_log)
        #: Jobs whose stored attempts/backoff differ from the declaration, already logged.
        self.warned_options: set[str] = set()
        #: The last stored opts text found to carry the declared retry options already: the
        #: jobs of one producer share it, so most jobs need neither a parse nor a Redis call.
        self.declared_text: str | None = None
        #: The stop signal of each job running alone here, by id (`JobHandle.cancel`).
        self.running: dict[str, CancelSignal] = {}

    # -- BullMQ worker ------------------------------------------------------------------

    def _worker_options(self) -> dict[str, Any]:
        options = self.owner.options
        settings = self.backend.settings
        concurrency = options.concurrency or self.processor.options.concurrency
        if self.processor.options.batch is not None:
            concurrency *= self.processor.options.batch.size
        lease = max(options.lease_ms, 1000)
        opts: dict[str, Any] = {
            # Bytes that are not UTF-8 must not fail the whole reply of moveToActive.
            "connection": _with_query(settings.connection_url, encoding_errors=ENCODING_ERRORS),
            "prefix": settings.prefix,
            "concurrency": concurrency,
            "lockDuration": lease,
            "stalledInterval": lease,
            "maxStalledCount": self.processor.options.max_stalled_count,
            "runRetryDelay": 1000,
            # An idle worker blocks on BullMQ's marker this long (s); bullmq-python's close()
            # can wait out one such block, so 5 s (the default) made shutdowns slow.
            "drainDelay": 1,
            "autorun": False,
            "name": self.owner.worker_id,
            "settings": {"backoffStrategy": backoff_strategy},
        }
        if self.processor.options.metrics:
            # BullMQ's own per-minute completed/failed counts (what Node's getMetrics and the
            # dashboards read), kept for two weeks of minutes as BullMQ suggests.
            opts["metrics"] = {"maxDataPoints": METRICS_DATA_POINTS}
        opts.update(settings.default_job_options())
        return opts

    async def configure(self) -> None:
        """Declared options are authoritative: set (or clear) BullMQ's global concurrency and
        global rate limit, and upsert (or remove) the processor's own `repeat` as a BullMQ job
        scheduler."""
        queue = await self.backend.queue(self.name)
        limit = self.processor.options.max_concurrency
        if limit is not None:
            await queue.setGlobalConcurrency(limit)
        else:
            await queue.removeGlobalConcurrency()
        # BullMQ's global rate limit (the queue's meta `max` / `duration`), which Node
        # workers on the queue read as well; ours wait it out in `PikkuWorker.getNextJob`.
        rate = self.processor.options.rate_limit
        if rate is not None:
            await queue.setGlobalRateLimit(rate.max, rate.per_ms)
        else:
            await queue.removeGlobalRateLimit()
        self.backend.set_queue_options(self.name, self.processor.options)
        repeat = self.processor.options.repeat
        if repeat is not None:
            # Upsert by a fixed id: a restart changes nothing, a changed cron replaces the
            # scheduler and its pending next run (BullMQ's addJobScheduler script).
            request = EnqueueRequest(
                queue=self.name, payload={}, job_id=PROCESSOR_SCHEDULER_ID, repeat=repeat
            )
            await self.backend.enqueue(request)
        else:
            await queue.removeJobScheduler(PROCESSOR_SCHEDULER_ID)

    async def start(self) -> None:
        self.worker = PikkuWorker(self.name, self._process, self._worker_options())
        self.worker.on("stalled", self._on_stalled)
        self.worker.on("error", self._on_error)
        self.worker.on("completed", self._on_settled)
        self.worker.on("failed", self._on_settled)
        if self.processor.options.max_concurrency is not None:
            self.worker.on("completed", self._wake_waiting)
            self.worker.on("failed", self._wake_waiting)
        # bullmq-python never asks the blocking connection for the server version, so it
        # assumes an old Redis and rounds every blocking wait up to whole seconds: a retry
        # backoff of 50 ms would wait 1 s. Asking once enables sub-second waits.
        blocking = getattr(self.worker, "blockingRedisConnection", None)
        if blocking is not None:
            with contextlib.suppress(Exception):
                await blocking.getRedisVersion()
        self.task = asyncio.ensure_future(self.worker.run())

    async def supervise(self) -> None:
        """Replace a worker whose loop ended on its own (a lost connection, a bullmq bug)."""
        if self.task is None or not self.task.done():
            return
        error = None if self.task.cancelled() else self.task.exception()
        logger.warning("%s: BullMQ worker stopped (%r); starting a new one", self.name, error)
        old = self.worker
        with contextlib.suppress(Exception):
            await old.close(force=True)
        await asyncio.sleep(RESTART_DELAY_S)
        await self.start()

    @property
    def in_flight(self) -> int:
        return len(self.worker.jobs) if self.worker is not None else 0

    async def close(self, grace_s: float) -> None:
        self.job_logs.detach()
        worker = self.worker
        if worker is None:
            return
        closing = asyncio.ensure_future(worker.close())
        done, _ = await asyncio.wait({closing}, timeout=grace_s)
        if not done:
            await self._release(worker)
            worker.forceClosing = True
            worker.cancelProcessing()
        with contextlib.suppress(Exception):
            await closing
        if self.task is not None:
            with contextlib.suppress(BaseException):
                await self.task

    async def _release(self, worker: Any) -> None:
        """Give back jobs still running after the grace period, untouched: moved to delayed
        with no delay and without counting an attempt, they are due again at once."""
        for job, token in list(worker.jobs):
            with contextlib.suppress(Exception):
                await job.moveToDelayed(int(time.time() * 1000), token)

    def _on_settled(self, job: Any, *_: Any) -> None:
        """BullMQ stored the job's outcome (completed, retried or failed)."""
        if job is not None:
            self.owner.burst.settled(self.name, str(job.id))

    def _on_stalled(self, job_id: Any, *_: Any) -> None:
        self.owner.report.stalled += 1
        observe.stalled(self.name, 1)
        if "stalled" in self.processor.options.events:
            self.owner.options.events.emit(
                JobEvent(name="stalled", queue=self.name, job_id=str(job_id), attempt=0)
            )

    def _wake_waiting(self, *_: Any) -> None:
        """Under a global concurrency cap, a worker that met a full queue sleeps on BullMQ's
        marker until its drain delay ends: bullmq-python finishes jobs without fetching the
        next, and BullMQ's script adds no marker when a slot frees up. Add it ourselves."""
        task = asyncio.ensure_future(self._add_marker())
        self.housekeeping.add(task)
        task.add_done_callback(self.housekeeping.discard)

    async def _add_marker(self) -> None:
        with contextlib.suppress(Exception):
            client = await self.backend.client()
            await client.zadd(self.backend.key(self.name, "marker"), {"0": 0})

    def _on_error(self, error: Any, *_: Any) -> None:
        logger.warning("%s: BullMQ worker error: %s", self.name, error)

    # -- one job ------------------------------------------------------------------------

    async def _process(self, job: Any, token: str) -> Any:
        burst = self.owner.burst
        burst.progressed()
        if not burst.delivered(self.name, str(job.id)):
            # Handed to this burst worker again and again, no outcome ever stored: held, not
            # run. Given back untouched (its attempt not counted), due after a lease, so this
            # worker does not take it again before it ends.
            logger.warning(
                "burst: %s job %s was handed out again with no verdict stored; held, not run",
                self.name, job.id,
            )  # fmt: skip
            due = int(time.time() * 1000) + max(self.owner.options.lease_ms, 1000)
            await job.moveToDelayed(due, token)
            raise DelayedError()
        bad_field: InvalidRecord | None = getattr(job, INVALID_RECORD_ATTR, None)
        delivery = Delivery(
            job_id=str(job.id),
            queue=self.name,
            payload=job.data,
            attempt=int(job.attemptsMade) + 1,
            enqueued_at_ms=int(job.timestamp),
            progress=job.updateProgress,
            trace_context=trace_context_of(job.opts),
            record_error=None if bad_field is None else bad_field.error,
        )
        self.job_logs.running(self.name, delivery.job_id)
        invalid: UndecodablePayload | InvalidRecord | None = bad_field or getattr(
            job, INVALID_PAYLOAD_ATTR, None
        )
        declaring: asyncio.Future[None] | None = None
        if invalid is None:
            self._warn_if_options_differ(job)
            # Alongside the attempt (a batch keeps the order its jobs came in), done before
            # the attempt is settled, so before it can be retried; only when the opts the
            # fetch returned differ from the declaration (no round trip for the others).
            if self._must_declare(job):
                declaring = asyncio.ensure_future(self._declare_options(job, token))
        if invalid is not None:  # no processor can read it: straight to the dead-letter queue
            verdict = invalid.verdict()
            self.engine.report_verdict(delivery, verdict)  # logged, events as on every backend
            outcome: Outcome = verdict
        elif self.batcher is not None:
            outcome = await self.batcher.submit(delivery)
        else:
            signal = self.running[delivery.job_id] = CancelSignal()
            try:
                outcome = await self.engine.run(delivery, signal)
            finally:
                self.running.pop(delivery.job_id, None)
        await self._write_job_logs(job)
        if declaring is not None:
            await declaring
        return await self.settler.settle(job, delivery, outcome)

    async def stop_cancelled(self) -> None:
        """Tell the jobs running here whose hash carries a cancel request to stop."""
        if not self.running:
            return
        for job_id in await self.backend.cancel_flags(self.name, list(self.running)):
            signal = self.running.get(job_id)
            if signal is not None and not signal.requested:
                logger.info("%s job %s: cancel requested; stopping it", self.name, job_id)
                signal.request()

    def _warn_if_options_differ(self, job: Any) -> None:
        """The attempts rule: the processor's declaration decides retries and backoff on every
        backend; a job whose stored opts say otherwise (a Node producer's) is logged once."""
        job_id = str(job.id)
        if job_id in self.warned_options:
            return
        difference = retry_options_difference(job.opts, self.processor.options.retry_options)
        if difference is not None:
            if len(self.warned_options) >= 10_000:
                self.warned_options.clear()
            self.warned_options.add(job_id)
            logger.warning(
                "%s job %s: its stored %s; the processor's declaration decides (attempts=%d,"
                " backoff=%s) and is written into the job's stored opts",
                self.name, job_id, difference,
                self.processor.options.retry_options.attempts,
                self.processor.options.retry_options.backoff,
            )  # fmt: skip

    def _must_declare(self, job: Any) -> bool:
        """Whether the job's stored opts, as its fetch returned them (`STORED_OPTS_ATTR`),
        may lack the declared `attempts` / `backoff`; True when they were not returned."""
        stored = getattr(job, STORED_OPTS_ATTR, None)
        if not isinstance(stored, str):
            return True
        if stored == self.declared_text:
            return False
        opts = loads_or_text(stored)
        if not isinstance(opts, dict):
            return False  # `_declare_options` leaves opts that are not an object alone too
        if declared_opts(opts, self.processor.options.retry_options) is not None:
            return True
        self.declared_text = stored
        return False

    async def _declare_options(self, job: Any, token: str) -> None:
        """Mixed fleets keep one rule: a job whose stored `attempts` / `backoff` differ from
        the declaration (a Node producer's) gets the declaration's values in its stored opts,
        atomically and under this worker's lock, before this attempt can be retried, so a
        Node worker that takes a later attempt retries it as declared."""
        key = self.backend.key(self.name, str(job.id))
        try:
            client = await self.backend.client()
            stored = await client.hget(key, "opts")
            opts = loads_or_text(str(stored)) if stored else {}
            if not isinstance(opts, dict):
                return
            wanted = declared_opts(opts, self.processor.options.retry_options)
            if wanted is None:
                return
            await client.eval(
                DECLARE_OPTS_SCRIPT, 2, key, f"{key}:lock", token, stored or "", dump_json(wanted)
            )
        except Exception as exc:  # this worker still runs the job as declared
            logger.warning(
                "%s job %s: cannot write the declared retry options into its opts: %s",
                self.name, job.id, exc,
            )  # fmt: skip

    async def _write_job_logs(self, job: Any) -> None:
        """The job's `ctx.logger` lines into its BullMQ log, before BullMQ finishes the job."""
        lines = self.job_logs.take(self.name, str(job.id))
        if not lines:
            return
        keep = job.opts.get("keepLogs")
        try:
            client = await self.backend.client()
            key = self.backend.key(self.name, str(job.id))
            await write_job_logs(client, key, lines, int(keep) if keep else None)
        except Exception as exc:  # a log line never changes a job's outcome
            logger.debug("%s: writing the log of job %s failed: %s", self.name, job.id, exc)


def _with_query(url: str, **params: str) -> str:
    """`url` with more query parameters (redis-py's `from_url` passes them to connections);
    the existing query is kept as written, not re-encoded."""
    parts = urlsplit(url)
    query = "&".join(part for part in (parts.query, urlencode(params)) if part)
    return urlunsplit(parts._replace(query=query))


class RedisWorker:
    """Runs a `_QueueRunner` per processor until `options.stop` is set (or, in burst mode,
    until no job is waiting, active or delayed, the next run of repeat schedules aside)."""

    def __init__(self, backend: RedisBackend, options: WorkerOptions) -> None:
        self.backend = backend
        self.options = options
        self.report = WorkerReport()
        self.worker_id = options.worker_id or f"pikku-{uuid.uuid4().hex[:12]}"
        self.runners: list[_QueueRunner] = []
        #: Paused queues a burst worker has reported (it leaves without their jobs).
        self.paused_reported: set[str] = set()
        #: What a burst worker has seen that cannot progress (`pikku_queue.burst`).
        self.burst = BurstWatch(enabled=options.burst)
        #: When (monotonic s) the last failed burst check was counted: one a second at most.
        self.failure_counted = 0.0

    async def run(self) -> WorkerReport:
        await check_connection(self.backend.settings)
        runners = [_QueueRunner(self, processor) for processor in self.options.processors]
        self.runners = runners
        for runner in runners:
            await runner.configure()
        for runner in runners:
            await runner.start()
        next_cancel_check = 0.0
        try:
            while not self.options.stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.options.stop.wait(), POLL_S)
                check_cancels = time.monotonic() >= next_cancel_check
                if check_cancels:
                    next_cancel_check = time.monotonic() + CANCEL_POLL_S
                for runner in runners:
                    await runner.supervise()
                    await self._quietly(runner.settler.sweep_stalled())
                    if check_cancels:
                        await self._quietly(runner.stop_cancelled())
                if self.options.burst and await self._drained(runners):
                    break
        finally:
            await asyncio.gather(
                *(runner.close(self.options.grace_period_s) for runner in runners),
                return_exceptions=True,
            )
            for runner in runners:  # verdicts the last jobs could not record, if any
                await self._quietly(
                    asyncio.wait_for(runner.settler.sweep_stalled(True), FINAL_SWEEP_S)
                )
        return self.report

    async def _paused_in_burst(self, queue: Any, name: str, counts: dict[str, Any]) -> bool:
        """A paused queue never drains: a burst worker reports the pause (once) and leaves its
        jobs where they are instead of hanging until someone resumes it."""
        if not await queue.isPaused():
            return False
        if name not in self.paused_reported:
            self.paused_reported.add(name)
            left = sum(int(value or 0) for value in counts.values())
            logger.warning(
                "%s: the queue is paused (BullMQ's pause): a --burst worker does not wait for"
                " a resume, so it leaves %d job(s) waiting and exits",
                name, left,
            )  # fmt: skip
        return True

    async def _quietly(self, step: Any) -> None:
        try:
            await step
        except Exception as exc:  # Redis away for a moment: the next poll tries again
            logger.debug("redis worker housekeeping failed: %s", exc)

    async def _drained(self, runners: list[_QueueRunner]) -> bool:
        """Whether a burst worker is done: nothing pending but what cannot progress
        (`pikku_queue.burst`: held jobs, ready jobs that no fetch hands out for a lease
        length, a Redis that failed `MAX_FAILED_CALLS` checks a second apart), which it then
        reports in `WorkerReport.undone`."""
        if any(runner.in_flight for runner in runners):
            return False
        out_of_reach: list[str] = []
        try:
            for runner in runners:  # before leaving, pick up jobs BullMQ failed on its own
                await runner.settler.sweep_stalled(force=True)
            for runner in runners:
                stuck = await self._pending(runner)
                if stuck is None:
                    return False
                bound = max(self.options.lease_ms, OUT_OF_REACH_MIN_MS)
                if stuck and not self.burst.out_of_reach(
                    runner.name, stuck, int(time.time() * 1000), bound
                ):
                    return False
                if stuck:
                    out_of_reach.append(
                        f"{runner.name}: {stuck} waiting job(s) that no fetch hands out"
                        " while none is active"
                    )
        except Exception as exc:
            return self._check_failed(exc)
        self.burst.call_succeeded()
        if any(runner.batcher and runner.batcher.pending for runner in runners):
            return False
        self.burst.end(self.report, out_of_reach)
        return True

    async def _pending(self, runner: _QueueRunner) -> int | None:
        """None while `runner`'s queue still has jobs that can progress; else how many waiting
        jobs no fetch hands out (0: the queue is drained but for held jobs)."""
        queue = await self.backend.queue(runner.name)
        counts = await queue.getJobCounts("waiting", "prioritized", "paused", "active", "delayed")
        held = self.burst.held_in(runner.name)
        # A repeat schedule always holds its next run in delayed: that never drains.
        delayed = max(int(counts.pop("delayed", 0) or 0) - await queue.getJobSchedulersCount(), 0)
        pending = sum(int(value or 0) for value in counts.values()) + delayed
        if pending <= held:
            return 0
        ready = int(counts.get("waiting", 0) or 0) + int(counts.get("prioritized", 0) or 0)
        if (ready or int(counts.get("paused", 0) or 0)) and await self._paused_in_burst(
            queue, runner.name, counts
        ):
            return 0  # a burst worker does not wait for a resume
        if (
            delayed
            or int(counts.get("active", 0) or 0)
            or held
            or not ready
            or await self._rate_limited(runner.name)
        ):
            self.burst.out_of_reach(runner.name, 0, 0, 0)  # progress possible: start again
            return None
        return ready

    async def _rate_limited(self, name: str) -> bool:
        """Whether BullMQ's rate limit holds the queue's jobs back right now (its `limiter`
        key lives until the window ends): they wait for time, which passes."""
        client = await self.backend.client()
        return int(await client.pttl(self.backend.key(name, "limiter"))) > 0

    def _check_failed(self, exc: Exception) -> bool:
        """A burst check that Redis failed; True when the burst worker gives up on Redis."""
        now = time.monotonic()
        if now - self.failure_counted < 1.0:
            return False
        self.failure_counted = now
        if not self.burst.call_failed():
            return False
        queues = ", ".join(runner.name for runner in self.runners)
        self.burst.end(self.report, [self.burst.gave_up(queues, exc)])
        return True
