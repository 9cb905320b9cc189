"""What backends store and report: job states, job views, counts, finished-job figures and
dead-letter records, as plain values.

Every backend builds and returns these, and the client, monitors, metrics and CLI read them;
they sit below the backend contract (`pikku_queue.backend`, protocols only) so that any layer
can name them without importing the contract or the engine.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from pikku_queue.errors import InvalidEnqueueOptionsError
from pikku_queue.options import MAX_DELAY_MS, Dedupe, Repeat
from pikku_queue.outcomes import DeadLetter, Delivery, ErrorInfo


class JobState(StrEnum):
    WAITING = "waiting"
    DELAYED = "delayed"  # waiting for its delay or its retry backoff to pass
    ACTIVE = "active"
    COMPLETED = "completed"
    FAILED = "failed"  # failed for good, and the processor names no dead-letter queue
    DEAD_LETTERED = "dead_lettered"  # failed for good and copied to the dead-letter queue


FINAL_STATES = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.DEAD_LETTERED})


@dataclass(frozen=True)
class EnqueueRequest:
    """A validated job, ready for a backend. The payload is JSON-ready (already dumped)."""

    queue: str
    payload: Any
    job_id: str | None = None
    delay_ms: int = 0
    priority: int | None = None
    repeat: Repeat | None = None
    #: The job's deduplication (its own, else its processor's) and its key rendered from the
    #: payload (`Dedupe.render`): both or neither.
    dedupe: Dedupe | None = None
    dedupe_key: str | None = None
    #: The W3C trace context of the enqueue (`pikku_queue.tracing`), stored beside the payload.
    trace_context: Mapping[str, str] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        # A request handed to a backend directly (not through the client's `EnqueueOptions`)
        # is held to the same delay rule, so no backend meets a delay it cannot store (2**63
        # was an OverflowError inside SQLite) or a bool posing as one.
        delay = self.delay_ms
        if type(delay) is not int or not 0 <= delay <= MAX_DELAY_MS:
            raise InvalidEnqueueOptionsError(
                f"invalid enqueue options: delay: a delay is a whole number of ms from 0 to "
                f"{MAX_DELAY_MS:,}, got {type(delay).__name__} {delay!r:.60}"
            )
        if (self.dedupe is None) != (self.dedupe_key is None):
            raise InvalidEnqueueOptionsError(
                "invalid enqueue options: dedupe: a request carries a Dedupe and its rendered "
                "key together (Dedupe.render), or neither"
            )

    def schedule_key(self) -> str:
        """The identity of a per-job schedule: its `job_id`, else a hash of the schedule and
        the payload. Every backend keys schedules by it, so enqueueing the same schedule again
        (at every deploy, say) updates one schedule instead of adding a second, and the same
        cron with another payload is another schedule, on every backend alike."""
        if self.job_id is not None:
            return self.job_id
        repeat = self.repeat
        basis = [repeat.cron, repeat.every, self.payload] if repeat else [None, None, self.payload]
        text = json.dumps(basis, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return "pikku-" + hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class JobInfo:
    id: str
    queue: str
    state: JobState
    payload: Any
    attempts_made: int = 0
    progress: dict[str, Any] | None = None
    result: Any = None
    error: ErrorInfo | None = None
    enqueued_at_ms: int = 0
    finished_at_ms: int | None = None


@dataclass(frozen=True)
class QueueCounts:
    """Jobs of a queue by state; what each count means: `pikku_queue.counts`."""

    waiting: int = 0
    active: int = 0
    delayed: int = 0
    completed: int = 0
    failed: int = 0
    dead_lettered: int = 0
    #: Of `delayed`, the next runs of repeat schedules (0 where a backend cannot tell).
    scheduled: int = 0


@dataclass(frozen=True)
class FinishedJob:
    """One finished job, for throughput, latency and error-rate figures."""

    enqueued_at_ms: int
    finished_at_ms: int
    succeeded: bool


@dataclass(frozen=True)
class FinishedSummary:
    """The jobs finished in a window without a row per job (what `QueueMonitor` needs): per
    outcome the count and the first finish kept, and the latencies (ms) of a bounded sample of
    the most recent. A backend may offer `finished_summary(queue, since_ms)`; otherwise the
    monitor builds one from `finished_since` (`of`)."""

    succeeded: int = 0
    failed: int = 0
    first_succeeded_ms: int | None = None
    first_failed_ms: int | None = None
    latencies_ms: Sequence[float] = ()

    @classmethod
    def of(cls, jobs: Sequence[FinishedJob]) -> FinishedSummary:
        ok = [job.finished_at_ms for job in jobs if job.succeeded]
        bad = [job.finished_at_ms for job in jobs if not job.succeeded]
        return cls(
            succeeded=len(ok),
            failed=len(bad),
            first_succeeded_ms=min(ok, default=None),
            first_failed_ms=min(bad, default=None),
            latencies_ms=[float(job.finished_at_ms - job.enqueued_at_ms) for job in jobs],
        )


@dataclass(frozen=True)
class FinishedBucket:
    """The jobs finished in one time bucket `[start_ms, start_ms + bucket_ms)`: how many, how
    many failed, and the latencies (ms) of a bounded sample of them (the bucket's most recent).
    A backend may offer `finished_buckets(queue, since_ms, bucket_ms)`; otherwise the web
    monitor builds them from `finished_since` (`of`)."""

    start_ms: int
    finished: int = 0
    failed: int = 0
    latencies_ms: Sequence[float] = ()

    @classmethod
    def of(cls, jobs: Sequence[FinishedJob], bucket_ms: int) -> dict[int, FinishedBucket]:
        """The buckets (by start) that `jobs` fall in, in one pass."""
        grouped: dict[int, list[FinishedJob]] = {}
        for job in jobs:
            start = job.finished_at_ms - job.finished_at_ms % bucket_ms
            grouped.setdefault(start, []).append(job)
        return {
            start: cls(
                start_ms=start,
                finished=len(inside),
                failed=sum(1 for job in inside if not job.succeeded),
                latencies_ms=[float(j.finished_at_ms - j.enqueued_at_ms) for j in inside],
            )
            for start, inside in grouped.items()
        }


#: how much of a traceback a dead-letter record sent as a message keeps (SQS bodies are at most
#: 1 MiB, Cloudflare messages 128 KB; the end of a traceback is the part worth keeping)
MESSAGE_TRACEBACK_CHARS = 8_000


@dataclass(frozen=True)
class DeadLetterRecord:
    """A job in a dead-letter queue. Its payload in the DLQ is `as_payload()`, the same envelope
    on every backend, so a processor registered on the DLQ receives this shape."""

    id: str  # the id of the record inside the dead-letter queue
    queue: str  # the queue the job failed on
    job_id: str  # its id there
    payload: Any  # the original payload, unchanged
    attempts: int
    reason: str  # DeadLetterReason
    error: ErrorInfo
    failed_at_ms: int
    #: "json" (`payload` is the decoded value), or, for a payload the engine could not read,
    #: "text" (its raw text) or "base64" (its raw bytes): see `pikku_queue.payloads`.
    payload_encoding: str = "json"

    def as_payload(self) -> dict[str, Any]:
        data = {
            "queue": self.queue,
            "job_id": self.job_id,
            "payload": self.payload,
            "attempts": self.attempts,
            "reason": self.reason,
            "error": self.error.as_dict(),
            "failed_at_ms": self.failed_at_ms,
        }
        if self.payload_encoding != "json":
            data["payload_encoding"] = self.payload_encoding
        return data

    @classmethod
    def sent_as_message(cls, delivery: Delivery, outcome: DeadLetter) -> DeadLetterRecord:
        """The record of a pushed or polled message that a push/SQS consumer sends on to its
        dead-letter queue as a message of its own: no id yet (the queue assigns one) and the
        traceback cut to `MESSAGE_TRACEBACK_CHARS`, so the record fits a message's size limit."""
        error = outcome.error
        return cls(
            id="",
            queue=delivery.queue,
            job_id=delivery.job_id,
            payload=delivery.payload,
            attempts=delivery.attempt,
            reason=outcome.reason,
            error=replace(error, traceback=error.traceback[-MESSAGE_TRACEBACK_CHARS:]),
            failed_at_ms=int(time.time() * 1000),
            # a payload the engine could not read is kept as text or base64 (`payloads`)
            payload_encoding=delivery.payload_encoding,
        )

    @classmethod
    def from_payload(cls, record_id: str, data: dict[str, Any]) -> DeadLetterRecord:
        error = data.get("error") or {}
        return cls(
            id=record_id,
            queue=str(data["queue"]),
            job_id=str(data["job_id"]),
            payload=data.get("payload"),
            attempts=int(data.get("attempts", 0)),
            reason=str(data.get("reason", "")),
            error=ErrorInfo(
                type=str(error.get("type", "")),
                message=str(error.get("message", "")),
                traceback=str(error.get("traceback", "")),
            ),
            failed_at_ms=int(data.get("failed_at_ms", 0)),
            payload_encoding=str(data.get("payload_encoding", "json")),
        )


#: The keys every `DeadLetterRecord.as_payload()` carries: what marks a job as a record.
_RECORD_KEYS = frozenset({"queue", "job_id", "payload", "attempts", "reason", "error"})


def is_dead_letter_record(payload: Any) -> bool:
    """Whether a job's payload is a dead-letter record (`DeadLetterRecord.as_payload`)."""
    return isinstance(payload, dict) and payload.keys() >= _RECORD_KEYS


def dead_letter_target(payload: Any, dead_letter_queue: str | None) -> str | None:
    """Where a job that failed for good goes: its processor's `dead_letter_queue`, except when
    the job is itself a dead-letter record. A record is never dead-lettered again: the job
    that carries it is failed (kept, with its error, in its own queue) instead, so a DLQ
    drained by a processor that itself names a DLQ (even a cycle, `a` → `b` → `a`) ends with
    one record and never bounces one failure between queues. Every backend applies this."""
    if dead_letter_queue is not None and is_dead_letter_record(payload):
        return None
    return dead_letter_queue


@dataclass(frozen=True)
class JobPage:
    """One page of a queue's jobs in one state, newest first (`ListsJobs.list_jobs`).

    `next_cursor` is opaque: hand it back for the page after this one; None when this page is
    the last. Each backend picks what it holds (SQLite: a row position, so a deep page costs
    what the first one does; Redis: an offset into BullMQ's list or sorted set)."""

    jobs: Sequence[JobInfo]
    next_cursor: str | None = None


#: The states whose jobs a monitor can clean (`CleansJobs.clean_jobs`): "failed" is every job
#: that failed for good, dead-lettered ones included (their records stay in the dead-letter
#: queue), as BullMQ's failed set holds both.
CLEANABLE_STATES = frozenset({JobState.COMPLETED, JobState.FAILED})
