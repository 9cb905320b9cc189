"""The adapter protocol every backend implements.

A backend has two faces. The producer face (enqueue, look up a job, count, dead letters) is the
same for all. The consumer face differs: pull backends (memory, SQLite, an SQS long-poll loop)
hand jobs to a worker loop, push backends (Lambda's SQS event, a Cloudflare batch) are handed
deliveries by the platform. Both end in the engine's Outcome, which the backend applies.

Third-party backends implement `Backend` (and `PullSource` to reuse the generic worker loop),
register a URL scheme with `pikku_queue.adapters.register_scheme`, and run
`pikku_queue.conformance` against themselves.

The whole contract is in this module: the required protocols (`Backend`; `PullSource` for the
generic pull worker) and the optional ones below them. Callers test an optional protocol with
`isinstance(backend, Protocol)` (all are runtime-checkable), never with a `getattr` probe:

- `HasClock`: `clock`, the backend's time (a virtual clock in tests);
- `Polled`: `poll_interval_s`, how long an idle pull worker waits between reserves;
- `Closable`: `closed`, so a cached backend is reopened once closed;
- `BulkEnqueue`: `enqueue_many`, several jobs in one round trip;
- `SummarisesFinished`: `finished_summary`, the monitor's window figures without a row per job;
- `BucketsFinished`: `finished_buckets`, the web monitor's chart per time bucket, likewise;
- `Drainable`, `Scheduled`, `ProcessorSchedules`, `BatchSettler`: what the pull worker uses
  when a source has it (burst drain count, next due time, a processor's own repeat, one
  round trip per settle batch).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pikku_queue.capabilities import Capabilities
from pikku_queue.engine import DeadLetter, Delivery, ErrorInfo, Outcome
from pikku_queue.events import EventBus
from pikku_queue.options import Repeat

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pikku_queue.clock import Clock
    from pikku_queue.engine import Processor


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
    #: The W3C trace context of the enqueue (`pikku_queue.tracing`), stored beside the payload.
    trace_context: Mapping[str, str] | None = field(default=None, compare=False)

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


@dataclass
class WorkerOptions:
    """How a worker runs: which processors, how many at once, when to stop."""

    processors: Sequence[Processor]
    #: Overrides each processor's `concurrency` when set.
    concurrency: int | None = None
    #: Exit once every queue is drained (no waiting, delayed or active jobs).
    burst: bool = False
    services: Any = None
    events: EventBus = field(default_factory=EventBus)
    #: Set to stop taking jobs; active ones get `grace_period_s` to finish, the rest are released.
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    grace_period_s: float = 30.0
    #: How long a reserved job stays leased before another worker may take it back.
    lease_ms: int = 30_000
    worker_id: str | None = None


@dataclass
class WorkerReport:
    completed: int = 0
    retried: int = 0
    dead_lettered: int = 0
    failed: int = 0
    stalled: int = 0


@runtime_checkable
class Backend(Protocol):
    """The producer face plus a way to run workers; every backend implements it."""

    url: str
    capabilities: Capabilities

    async def enqueue(self, request: EnqueueRequest) -> str:
        """Store a job; return its id. An existing `job_id` returns that id, no duplicate."""
        ...

    async def get_job(self, queue: str, job_id: str) -> JobInfo | None: ...

    async def counts(self, queue: str) -> QueueCounts: ...

    async def finished_since(self, queue: str, since_ms: int) -> list[FinishedJob]: ...

    async def dead_letters(self, dlq: str, limit: int = 100) -> list[DeadLetterRecord]: ...

    async def replay(self, dlq: str, ids: Sequence[str] | None = None) -> int:
        """Move records (all when `ids` is None) back to their queue; return how many."""
        ...

    async def run_worker(self, options: WorkerOptions) -> WorkerReport:
        """Consume the processors' queues until `options.stop` is set (or drained, if burst)."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class PullSource(Protocol):
    """What the generic worker loop (`pikku_queue.worker`) needs from a pull backend."""

    async def reserve(
        self,
        queue: str,
        limit: int,
        lease_ms: int,
        worker_id: str,
        max_active: int | None = None,
    ) -> list[Delivery]:
        """Lease up to `limit` due jobs, best priority first, then FIFO. With `max_active`, never
        let the queue's active jobs (across every worker) exceed it: the check and the lease
        must be one atomic step, or two workers could both see a free slot."""
        ...

    async def settle(
        self, delivery: Delivery, outcome: Outcome, dead_letter_queue: str | None
    ) -> None: ...

    async def extend_lease(self, queue: str, job_ids: Sequence[str], lease_ms: int) -> None: ...

    async def release(self, queue: str, job_ids: Sequence[str]) -> None:
        """Give back leased jobs untouched (graceful shutdown)."""
        ...

    async def recover_stalled(
        self, queue: str, max_stalled_count: int, dead_letter_queue: str | None = None
    ) -> list[str]:
        """Return expired leases to waiting (or fail them past `max_stalled_count`, into
        `dead_letter_queue` when given)."""
        ...

    async def active_count(self, queue: str) -> int: ...


# ---------------------------------------------------------------------- optional protocols


@runtime_checkable
class HasClock(Protocol):
    """Optional: the clock the backend stamps jobs with (SQLite, memory: a `VirtualClock` in
    tests). The pull worker sleeps on it and the monitor reads "now" from it; else the system
    clock."""

    clock: Clock


@runtime_checkable
class Polled(Protocol):
    """Optional: seconds an idle pull worker waits between two reserves when nothing is due
    (SQLite 0.05, memory 0.005); else `DEFAULT_POLL_INTERVAL_S`."""

    poll_interval_s: float


DEFAULT_POLL_INTERVAL_S = 0.05


@runtime_checkable
class Closable(Protocol):
    """Optional: True once `close()` ran, so a process-wide cache (the client's backend per
    URL) opens a new one instead of reusing a closed backend."""

    @property
    def closed(self) -> bool: ...


@runtime_checkable
class BulkEnqueue(Protocol):
    """Optional: store several jobs in one round trip (SQLite, memory, Redis, SQS, Cloudflare);
    returns their ids in order. Else the client enqueues them one by one, concurrently."""

    async def enqueue_many(self, requests: Sequence[EnqueueRequest]) -> list[str]: ...


@runtime_checkable
class SummarisesFinished(Protocol):
    """Optional: the monitor's window figures (throughput, latency, error rate) computed by the
    backend (SQLite: in SQL), without returning a row per finished job."""

    async def finished_summary(self, queue: str, since_ms: int) -> FinishedSummary: ...


@runtime_checkable
class BucketsFinished(Protocol):
    """Optional: the jobs of a queue finished since `since_ms`, per bucket of `bucket_ms`
    (aligned on multiples of it), each with a bounded latency sample: the web monitor's chart
    without a row per finished job (SQLite: in SQL). Buckets with no job may be left out."""

    async def finished_buckets(
        self, queue: str, since_ms: int, bucket_ms: int
    ) -> list[FinishedBucket]: ...


@runtime_checkable
class Drainable(Protocol):
    """Optional: how many jobs of a queue a burst worker must still wait for."""

    async def pending_count(self, queue: str) -> int: ...


@runtime_checkable
class Scheduled(Protocol):
    """Optional: when the next delayed job becomes due, so an idle worker can sleep till then."""

    async def next_due_ms(self, queues: Iterable[str]) -> int | None: ...


@runtime_checkable
class ProcessorSchedules(Protocol):
    """Optional: store a processor's own `repeat` under one key per queue, replacing a changed
    schedule and removing it when `repeat` is None (the worker calls this at every start)."""

    async def set_processor_schedule(self, queue: str, repeat: Repeat | None) -> None: ...


@runtime_checkable
class BatchSettler(Protocol):
    """Optional: apply several verdicts in one round trip."""

    async def settle_many(
        self, settled: Sequence[tuple[Delivery, Outcome]], dead_letter_queue: str | None
    ) -> None: ...
