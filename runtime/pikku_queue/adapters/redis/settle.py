"""The engine's outcome in BullMQ's verbs: what the processor callback returns or raises.

BullMQ's own scripts finish every job (moveToCompleted, moveToFailed, its retries and delays),
so settling a job means answering the callback in the way that makes BullMQ do what the
engine decided:

- Completed(result)      → return the result (BullMQ's moveToCompleted stores it).
- Retry(delay_ms, error) → raise; the job's backoff is switched, in memory only, to a custom
                           strategy that answers `delay_ms`, so BullMQ's own moveToFailed
                           moves it to delayed (or straight back to wait) with our exact delay.
                           The stored opts keep a native backoff, so a Node worker still reads
                           the job without meeting an unknown strategy.
- Cancelled              → mark the job cancelled, raise BullMQ's UnrecoverableError: it
                           lands in BullMQ's failed set (what a Node dashboard shows), never
                           retried; our mark says cancelled. A failed attempt of a job asked
                           to stop meanwhile (`CANCEL_FIELD`) is settled so too.
- DeadLetter(reason)     → write the `DeadLetterRecord` into the dead-letter queue (a plain
                           BullMQ queue), mark the job, raise BullMQ's UnrecoverableError.
                           If Redis refuses that write even after a few tries, the job still
                           fails as unrecoverable (never retried) with the verdict in its
                           failedReason, and the next sweep writes the record.

A job whose data is not JSON (a foreign producer wrote it) cannot even be loaded by
bullmq-python; `bullmq_worker.PikkuWorker` loads it anyway so it reaches the same dead-letter
path.

The sweep (`Settler.sweep_stalled`) settles the failed jobs whose record no callback wrote:
those BullMQ failed itself for stalling too often (its Lua script asks no callback), and those
whose verdict could not be written (`PENDING_VERDICT`).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import TYPE_CHECKING, Any, cast, get_args

from bullmq import UnrecoverableError

from pikku_queue.backend import WorkerReport
from pikku_queue.engine import Engine
from pikku_queue.outcomes import (
    Cancelled,
    Completed,
    DeadLetter,
    DeadLetterReason,
    Delivery,
    ErrorInfo,
    Outcome,
    Retry,
    cancelled_error,
    stalled_error,
)
from pikku_queue.payloads import UndecodablePayload, decode_payload, minimal_error
from pikku_queue.processor import Processor
from pikku_queue.records import DeadLetterRecord, dead_letter_target

from .bullmq_worker import INVALID_PAYLOAD_ATTR
from .jobs import OUTCOME_FIELD, PIKKU_BACKOFF, loads_or_text, stored_count

if TYPE_CHECKING:
    from .backend import RedisBackend

logger = logging.getLogger("pikku_queue.redis")

#: BullMQ's message for a job that stalled more often than `maxStalledCount` allows.
STALLED_REASON = "job stalled more than allowable limit"
#: How far each sweep looks back before the previous one: BullMQ scores a failed job with the
#: time its client took before the write, so a job can land just behind a sweep's start.
SWEEP_OVERLAP_MS = 5_000
#: Pauses between the tries of writing a dead-letter verdict (a Redis blip passes meanwhile).
VERDICT_RETRY_DELAYS_S = (0.1, 0.5, 2.0)
#: How a failedReason carries a verdict that could not be written yet (read by the sweep).
PENDING_VERDICT = "pikku: dead-letter pending ({reason}) {type}: {message}"
_PENDING_RE = re.compile(
    rf"pikku: dead-letter pending \(({'|'.join(get_args(DeadLetterReason))})\) ([^:]*): (.*)",
    re.DOTALL,
)


class RetryLater(Exception):
    """Raised to BullMQ for a Retry outcome; carries the engine's delay to our strategy."""

    def __init__(self, outcome: Retry) -> None:
        super().__init__(f"{outcome.error.type}: {outcome.error.message}")
        self.delay_ms = outcome.delay_ms


def backoff_strategy(attempts_made: int, backoff_type: str, err: Any, job: Any) -> int:
    """BullMQ's custom backoff hook: the delay the engine computed (fixed, exponential with
    factor and max_delay, jitter)."""
    return err.delay_ms if isinstance(err, RetryLater) else 0


def _keep_traceback(job: Any, error: ErrorInfo) -> None:
    """Make BullMQ store the processor's traceback rather than the one of our own raise."""

    def update() -> None:
        job.stacktrace.append(error.traceback or f"{error.type}: {error.message}")

    job.updateStacktrace = update


class Settler:
    """Settles one processor's jobs, in the callback and in the sweep.

    It holds what settling needs and nothing of the worker that runs the jobs: the backend
    (records, marks, the failed set), the processor's declaration (its dead-letter queue, its
    `max_stalled_count`), the worker's report, and the engine, which announces a verdict
    reached outside `Engine.run` (its log lines and events). The sweep's window lives here too.
    """

    def __init__(
        self,
        backend: RedisBackend,
        processor: Processor,
        engine: Engine,
        report: WorkerReport,
        lease_ms: int,
    ) -> None:
        self.backend = backend
        self.processor = processor
        self.name = processor.name
        self.engine = engine
        self.report = report
        self.lease_ms = lease_ms
        self.last_sweep_ms = int(time.time() * 1000) - lease_ms * 4
        self.next_sweep = 0.0

    async def settle(self, job: Any, delivery: Delivery, outcome: Outcome) -> Any:
        """What the processor callback returns for `outcome`, or raises (the module's table):
        BullMQ's own scripts then finish the job as the engine decided."""
        if isinstance(outcome, Completed):
            self.report.completed += 1
            return outcome.result
        if not isinstance(outcome, Cancelled) and await self._cancel_requested(job):
            # asked to stop after the worker's last look: it ends cancelled, not retried
            outcome = Cancelled(cancelled_error(delivery.attempt))
        _keep_traceback(job, outcome.error)
        if isinstance(outcome, Cancelled):
            await self.backend.mark_final(
                self.name, str(job.id), "cancelled", outcome.error.as_dict()
            )
            self.report.cancelled += 1
            raise UnrecoverableError(f"{outcome.error.type}: {outcome.error.message}")
        if isinstance(outcome, Retry):
            self.report.retried += 1
            job.opts["backoff"] = {"type": PIKKU_BACKOFF, "delay": outcome.delay_ms}
            job.opts["attempts"] = max(stored_count(job.opts.get("attempts")), delivery.attempt + 1)
            raise RetryLater(outcome)
        if not await self._record_verdict(job, delivery.attempt, outcome):
            error = outcome.error
            raise UnrecoverableError(
                PENDING_VERDICT.format(
                    reason=outcome.reason, type=error.type, message=error.message
                )
            )
        raise UnrecoverableError(f"{outcome.error.type}: {outcome.error.message}")

    async def _cancel_requested(self, job: Any) -> bool:
        """Whether the job carries a cancel request (one HEXISTS, for failed attempts only);
        a Redis blip counts as no (the attempt then settles as it ended)."""
        try:
            return await self.backend.cancel_flags(self.name, [str(job.id)]) != set()
        except Exception as exc:
            logger.debug("%s: reading job %s's cancel request failed: %s", self.name, job.id, exc)
            return False

    async def _record_verdict(self, job: Any, attempt: int, outcome: DeadLetter) -> bool:
        """Write the verdict, riding out a Redis blip. Were the error of a failed write raised to
        BullMQ instead of UnrecoverableError, it would retry a NonRetryableError, or fail the job
        with no record for `dlq replay` to find. Returns False when every try failed: the
        caller then fails the job with the verdict in its failedReason, for `sweep_stalled`."""
        for delay_s in VERDICT_RETRY_DELAYS_S:
            try:
                await self._finish_failed(job, attempt, outcome)
                return True
            except Exception as exc:  # both writes are idempotent, so trying again is safe
                logger.debug("%s: recording job %s failed: %s", self.name, job.id, exc)
            await asyncio.sleep(delay_s)
        try:
            await self._finish_failed(job, attempt, outcome)
            return True
        except Exception as exc:
            logger.warning(
                "%s: cannot record job %s as %s yet (%s); a sweep will retry",
                self.name, job.id, outcome.reason, exc,
            )  # fmt: skip
            return False

    async def _finish_failed(self, job: Any, attempt: int, outcome: DeadLetter) -> None:
        dlq = dead_letter_target(job.data, self.processor.options.dead_letter_queue)
        job_id = str(job.id)
        invalid: UndecodablePayload | None = getattr(job, INVALID_PAYLOAD_ATTR, None)
        if dlq is None:
            await self.backend.mark_final(self.name, job_id, "failed", outcome.error.as_dict())
            self.report.failed += 1
            return
        record = DeadLetterRecord(
            id=f"{self.name}-{job_id}-{stored_count(job.attemptsStarted) or attempt}",
            queue=self.name,
            job_id=job_id,
            payload=job.data,
            attempts=attempt,
            reason=outcome.reason,
            error=outcome.error,
            failed_at_ms=int(time.time() * 1000),
            payload_encoding=invalid.encoding if invalid is not None else "json",
        )
        if not await self.backend.add_dead_letter(dlq, record):  # no form can be stored
            error = minimal_error(outcome.error).as_dict()
            await self.backend.mark_final(self.name, job_id, "failed", error)
            self.report.failed += 1
            return
        await self.backend.mark_final(self.name, job_id, "dead_lettered", outcome.error.as_dict())
        self.report.dead_lettered += 1

    async def sweep_stalled(self, force: bool = False) -> None:
        """Finish the failed jobs nobody recorded: those BullMQ itself failed for stalling past
        `max_stalled_count` (its Lua script moves them to failed without asking us), and those
        whose verdict could not be written (`PENDING_VERDICT`). The window only moves on once
        every one is recorded, so a sweep that meets Redis trouble is done again in full."""
        if not force and time.monotonic() < self.next_sweep:
            return
        self.next_sweep = time.monotonic() + max(self.lease_ms, 1000) / 2000
        client = await self.backend.client()
        now = int(time.time() * 1000)
        key = self.backend.key(self.name, "failed")
        found = await client.zrangebyscore(key, self.last_sweep_ms, "+inf")
        for job_id in (str(job_id) for job_id in found):
            fields = await client.hmget(
                self.backend.key(self.name, job_id),
                "failedReason", OUTCOME_FIELD, "data", "atm", "ats", "stacktrace", "stc",
            )  # fmt: skip
            reason, marked, data, made, started, stack, stalls = (
                None if v is None else str(v) for v in fields
            )
            if marked or not reason:
                continue
            pending = _PENDING_RE.fullmatch(reason)
            if pending is not None:  # the attempt that reached the verdict is counted already
                verdict = DeadLetter(
                    cast(DeadLetterReason, pending[1]),
                    ErrorInfo(type=pending[2], message=pending[3], traceback=_last(stack)),
                )
                attempt = stored_count(made, 1) or 1
            elif STALLED_REASON in reason:
                verdict, attempt = self._stalled_verdict(made, stalls)
            else:
                continue
            # The record's id as `_finish_failed` would have made it in the worker.
            job = _FailedJob(job_id, data, (stored_count(started) if pending else 0) or attempt)
            await self._finish_failed(job, attempt, verdict)
            if pending is None:  # the engine announced the pending verdict already
                delivery = Delivery(job_id, self.name, job.data, attempt, enqueued_at_ms=0)
                self.engine.report_verdict(delivery, verdict)
        self.last_sweep_ms = max(self.last_sweep_ms, now - SWEEP_OVERLAP_MS)

    def _stalled_verdict(self, made: str | None, stalls: str | None) -> tuple[DeadLetter, int]:
        """The verdict and attempt count of a job BullMQ failed for stalling, as SQLite gives
        them: the attempts that started, the stalled one included (BullMQ's deferred failure
        counted it in `atm`), and the one stalled-job error text (`stalled_error`)."""
        error = stalled_error(stored_count(stalls, 1), self.processor.options.max_stalled_count)
        return DeadLetter("stalled", error), max(stored_count(made, 1), 1)


class _FailedJob:
    """The few fields `_finish_failed` reads, for a failed job found by the sweep."""

    def __init__(self, job_id: str, data: str | None, attempts_started: int) -> None:
        self.id = job_id
        self.data: Any = None
        self.attemptsStarted = attempts_started
        if data:
            try:
                self.data = decode_payload(data)
            except UndecodablePayload as exc:
                self.data = exc.stored
                setattr(self, INVALID_PAYLOAD_ATTR, exc)


def _last(stacktrace: str | None) -> str:
    """The newest entry of BullMQ's stacktrace field (our processor's traceback)."""
    stack = loads_or_text(stacktrace) if stacktrace else []
    return str(stack[-1]) if isinstance(stack, list) and stack else ""
