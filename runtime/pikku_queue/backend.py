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
- `Drainable`, `Scheduled`, `ProcessorSchedules`, `BatchSettler`, `LiveLeases`, `Notified`:
  what the pull worker uses when a source has it (burst drain count, next due time, a
  processor's own repeat, one round trip per settle batch, which active jobs a burst worker
  still waits for, a wake-up when a job becomes ready);
- `RateLimits`: `set_rate_limit`, a processor's `rate_limit`, kept by every worker of the
  backend together (the pull worker calls it at start);
- `CancelsJobs`, `CancelRequests`: cancel a job (`JobHandle.cancel`: remove it while it
  waits, ask its worker to stop it while it runs), and which running jobs were asked to stop
  (what the pull worker polls); declared as the features `cancel` and `cancel_running`.
- `TransactionalEnqueue`: `enqueue_in_transaction`, jobs written inside the caller's own
  database transaction (PostgreSQL).
- `WatchesJobs`: `watch_job`, a `JobWatch` told when a job may have changed, so
  `JobHandle.result()` waits for a push instead of polling (Redis: BullMQ's events stream;
  SQLite and memory: the settle of a worker in the same process).
- `ListsJobs`, `RetriesJobs`, `RemovesJobs`, `PromotesJobs`, `PausesQueues`, `CleansJobs`:
  what the web monitor shows and does (jobs by state a page at a time; retry, remove,
  promote, pause and resume, clean), each also declared as a feature in the backend's
  `Capabilities`, which is what the monitor reads before offering it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pikku_queue.capabilities import Capabilities
from pikku_queue.events import EventBus
from pikku_queue.options import RateLimit, Repeat
from pikku_queue.outcomes import Delivery, Outcome
from pikku_queue.processor import Processor

# What backends store and report lives below the contract; its old home re-exports it.
from pikku_queue.records import FINAL_STATES as FINAL_STATES
from pikku_queue.records import MESSAGE_TRACEBACK_CHARS as MESSAGE_TRACEBACK_CHARS
from pikku_queue.records import CancelResult as CancelResult
from pikku_queue.records import DeadLetterRecord as DeadLetterRecord
from pikku_queue.records import EnqueueRequest as EnqueueRequest
from pikku_queue.records import FinishedBucket as FinishedBucket
from pikku_queue.records import FinishedJob as FinishedJob
from pikku_queue.records import FinishedSummary as FinishedSummary
from pikku_queue.records import JobInfo as JobInfo
from pikku_queue.records import JobPage as JobPage
from pikku_queue.records import JobState as JobState
from pikku_queue.records import QueueCounts as QueueCounts
from pikku_queue.records import dead_letter_target as dead_letter_target
from pikku_queue.records import is_dead_letter_record as is_dead_letter_record

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pikku_queue.clock import Clock


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
    #: Attempts stopped by a cancel (`JobHandle.cancel`), ended `cancelled`.
    cancelled: int = 0
    #: A burst worker that ended with jobs it could not bring to a verdict (`pikku_queue.burst`):
    #: one line per job or queue, saying why. The runner then exits `EXIT_UNDONE`.
    undone: list[str] = field(default_factory=list)


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
    """What the generic worker loop (`pikku_queue.pull`) needs from a pull backend."""

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
    """Optional: when the next delayed job becomes due (or a full rate-limit window of these
    queues ends: `RateLimits`), so an idle worker can sleep till then."""

    async def next_due_ms(self, queues: Iterable[str]) -> int | None: ...


@runtime_checkable
class ProcessorSchedules(Protocol):
    """Optional: store a processor's own `repeat` under one key per queue, replacing a changed
    schedule and removing it when `repeat` is None (the worker calls this at every start)."""

    async def set_processor_schedule(self, queue: str, repeat: Repeat | None) -> None: ...


@runtime_checkable
class RateLimits(Protocol):
    """Optional: from now on, lease at most `rate_limit.max` jobs of `queue` per window of
    `rate_limit.per_ms`, counted across every worker of the backend (None: no limit). A job
    the limit holds back stays waiting; no attempt is counted. The pull worker calls this for
    each of its processors at start; a backend without it cannot keep a rate limit."""

    async def set_rate_limit(self, queue: str, rate_limit: RateLimit | None) -> None: ...


@runtime_checkable
class BatchSettler(Protocol):
    """Optional: apply several verdicts in one round trip."""

    async def settle_many(
        self, settled: Sequence[tuple[Delivery, Outcome]], dead_letter_queue: str | None
    ) -> None: ...


@runtime_checkable
class LiveLeases(Protocol):
    """Optional: how many active jobs of a queue are under a lease that has not ended. A burst
    worker waits for those (their worker may still settle them, or the lease expire); an
    active job whose lease ended and that stall recovery cannot put back cannot progress
    (`pikku_queue.burst`). Without it, every active job counts as under a live lease."""

    async def live_lease_count(self, queue: str) -> int: ...


@runtime_checkable
class Notified(Protocol):
    """Optional: an idle pull worker waits on this instead of sleeping out its poll interval
    (PostgreSQL: LISTEN/NOTIFY), so a job committed while it idles starts within
    milliseconds. It returns when a job may have become ready on one of `queues` (a hint: the
    worker still looks), or after `timeout_s`."""

    async def wait_for_jobs(self, queues: Iterable[str], timeout_s: float) -> None: ...


class JobWatch:
    """What a waiter on one job holds: `notify()` (a backend's push, from any thread through
    the waiter's loop) wakes `changed()`. A hint, never the answer: the waiter reads the job
    again after each wake-up. `recheck_s` is how often a waiter re-reads the job anyway:
    None when the push covers only some changes (a SQLite worker in another process), so the
    waiter keeps its bounded polling and a push only cuts a pause short; a number when every
    change pushes (Redis), a safety net against a lost push."""

    __slots__ = ("_event", "_loop", "recheck_s")

    def __init__(self, recheck_s: float | None = None) -> None:
        self.recheck_s = recheck_s
        self._event = asyncio.Event()
        self._loop = asyncio.get_running_loop()

    def notify(self) -> None:
        """Wake the waiter (callable from any thread)."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._event.set()
        else:
            with contextlib.suppress(RuntimeError):  # that loop closed: nobody waits any more
                self._loop.call_soon_threadsafe(self._event.set)

    async def changed(self, timeout_s: float) -> bool:
        """Wait for a push, at most `timeout_s`; whether one came (consumed either way)."""
        if not self._event.is_set():
            try:
                await asyncio.wait_for(self._event.wait(), timeout_s)
            except TimeoutError:
                return False
        self._event.clear()
        return True


@runtime_checkable
class WatchesJobs(Protocol):
    """Optional: `watch_job(queue, job_id)` is an async context manager giving a `JobWatch`
    registered *before* it is returned, so a change after the caller's next read of the job
    always wakes it (the caller reads the job after entering, then waits)."""

    def watch_job(self, queue: str, job_id: str) -> AbstractAsyncContextManager[JobWatch]: ...


class FinishWatch(Protocol):
    """One waiter's subscription (`NotifiesFinished.watch_finished`)."""

    async def wait(self, timeout_s: float) -> None:
        """Return when a job of the watched queue may have finished since the last `wait`
        (or since the watch began), or after `timeout_s`."""
        ...


@runtime_checkable
class NotifiesFinished(Protocol):
    """Optional: a producer waiting for a job's end (`JobHandle.result()`) is woken when a job
    of its queue finishes (PostgreSQL: LISTEN/NOTIFY), instead of reading the job again and
    again. A wake-up is only a hint: the waiter reads the job, and still reads it at a long
    interval without one."""

    def watch_finished(self, queue: str) -> AbstractAsyncContextManager[FinishWatch]: ...


@runtime_checkable
class TransactionalEnqueue(Protocol):
    """Optional: write jobs on the caller's open connection, inside its transaction, so they
    exist once it commits and never if it rolls back (PostgreSQL). `connection` is what the
    backend documents (a psycopg connection, a SQLAlchemy session, Django's connection); the
    client passes it through from `enqueue(..., connection=...)`. Ids in request order.
    `bind_connection` is called first by the sync enqueue paths, in the caller's own thread
    and context (a connection local to them, Django's, is resolved there)."""

    def bind_connection(self, connection: Any) -> Any: ...

    async def enqueue_in_transaction(
        self, connection: Any, requests: Sequence[EnqueueRequest]
    ) -> list[str]: ...


@runtime_checkable
class CancelsJobs(Protocol):
    """Optional: cancel job `job_id` of `queue` (`JobHandle.cancel`, `pikkugen cancel`). A
    waiting or delayed job is removed at once and never runs (`REMOVED`); a running one gets a
    stop request stored beside that very job (never under its bare id, so a later job that
    reuses the id is not hit) that its worker sees within a bounded poll (`REQUESTED`); it then
    ends `cancelled`, neither retried nor dead-lettered. A job that already ended, the pending
    next run of a repeat schedule, or none at all: `FINISHED`, `SCHEDULED`, `NOT_FOUND`."""

    async def cancel_job(self, queue: str, job_id: str) -> CancelResult: ...


@runtime_checkable
class CancelRequests(Protocol):
    """Optional: which of `job_ids` (jobs of `queue` this worker runs) were asked to stop by
    `CancelsJobs.cancel_job`. The pull worker asks every `records.CANCEL_POLL_S`."""

    async def cancel_requested(self, queue: str, job_ids: Sequence[str]) -> set[str]: ...


# ------------------------------------------------------- what the web monitor shows and does


@runtime_checkable
class ListsJobs(Protocol):
    """Optional: a page of at most `limit` jobs of `queue` in `state`, newest first; `cursor`
    is None for the first page, else the previous page's `next_cursor` (a cursor the backend
    never gave is a ValueError). The states are the counts' (`pikku_queue.counts`): a page of
    `waiting` holds what `counts().waiting` counts."""

    async def list_jobs(
        self, queue: str, state: JobState, limit: int, cursor: str | None = None
    ) -> JobPage: ...


@runtime_checkable
class RetriesJobs(Protocol):
    """Optional: send a job that failed for good (`failed`, no dead-letter queue took it) back
    to waiting with its attempts reset, keeping its id; False when it is not failed (any more).
    A dead-lettered job goes back by replaying its record (`Backend.replay`)."""

    async def retry_job(self, queue: str, job_id: str) -> bool: ...


@runtime_checkable
class RemovesJobs(Protocol):
    """Optional: delete a job that is not active, and not the pending next run of a repeat
    schedule (removing that would end the schedule; BullMQ refuses it too); False when it is
    one of those, or not there."""

    async def remove_job(self, queue: str, job_id: str) -> bool: ...


@runtime_checkable
class PromotesJobs(Protocol):
    """Optional: make a delayed job (a delay, or a retry's backoff) due now; False when it is
    not delayed."""

    async def promote_job(self, queue: str, job_id: str) -> bool: ...


@runtime_checkable
class PausesQueues(Protocol):
    """Optional: stop every worker of `queue` from taking its jobs (the active ones finish),
    until resumed; shared by all the workers and producers of the backend. A `--burst` worker
    does not wait for a resume: a paused queue counts as drained."""

    async def pause_queue(self, queue: str) -> None: ...

    async def resume_queue(self, queue: str) -> None: ...

    async def is_paused(self, queue: str) -> bool: ...


@runtime_checkable
class CleansJobs(Protocol):
    """Optional: remove the jobs of `queue` in `state` (one of `records.CLEANABLE_STATES`) that
    finished at least `grace_ms` ago; how many went."""

    async def clean_jobs(self, queue: str, state: JobState, grace_ms: int = 0) -> int: ...
