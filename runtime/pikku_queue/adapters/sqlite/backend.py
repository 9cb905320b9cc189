"""`sqlite:///path.db`: the embedded default backend, on stdlib `sqlite3`.

Why it is built the way it is:

* One file, several worker processes. Every state change is a short `BEGIN IMMEDIATE`
  transaction, so two workers can never lease the same job, and the global `max_concurrency`
  check happens inside the same transaction as the lease.
* Nothing lost on SIGKILL. A leased job carries `lease_until`; workers extend it while the job
  runs. When a worker dies the lease expires, `recover_stalled` puts the job back (or
  dead-letters it past `max_stalled_count`).
* Cheap polling with a large backlog: partial indexes (`sqlite.schema`).
* The event loop never blocks on the file, and writes issued together share one commit
  (`sqlite.thread`).
* Jobs carry a lease `token` that grows with every lease, so a worker that lost its lease
  cannot settle or extend the job any more (`sqlite.leases`).

This module is the Backend/PullSource face: it stamps the time, keeps the tokens this process
holds, and hands each statement group to the connection thread. The SQL lives beside it:
`sqlite.leases` (lease and settle), `sqlite.schedules` (repeat), `sqlite.dead_letters`
(listing and replay), `sqlite.admin` (the monitor's lists and actions, a mixin),
`sqlite.codec` (JSON columns).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

from pikku_queue.adapters.sqlite import BACKEND
from pikku_queue.adapters.sqlite.admin import SqliteAdmin, queue_paused
from pikku_queue.adapters.sqlite.cancel import cancel, requested
from pikku_queue.adapters.sqlite.codec import dumps, job_info
from pikku_queue.adapters.sqlite.counters import pending, queue_counts, stored_count
from pikku_queue.adapters.sqlite.dead_letters import as_record, list_records, replay_records
from pikku_queue.adapters.sqlite.leases import (
    SWEEP_EVERY_MS,
    Leased,
    extend_leases,
    lease_jobs,
    recover_expired,
    release_leases,
    settle,
)
from pikku_queue.adapters.sqlite.limits import INSERT_JOB, deduplicate, window_end
from pikku_queue.adapters.sqlite.pruning import (
    BUCKET_LATENCY_SAMPLE,
    COMPLETED,
    DELETE_CHUNK,
    FAILED,
    PRUNE_EVERY,
    delete_chunk,
    finished_buckets,
    finished_summary,
    prune_cutoff,
)
from pikku_queue.adapters.sqlite.schedules import (
    PROCESSOR_SCHEDULE_KEY,
    add_schedule,
    replace_processor_schedule,
)
from pikku_queue.adapters.sqlite.schema import JOB_COLUMNS, SCHEMA
from pikku_queue.adapters.sqlite.thread import ConnectionThread, Tx
from pikku_queue.backend import JobWatch, WorkerOptions, WorkerReport
from pikku_queue.capabilities import Capabilities
from pikku_queue.clock import SYSTEM_CLOCK, Clock
from pikku_queue.errors import BackendError
from pikku_queue.fields import MAX_LEASE_MS, MAX_STORED_INT
from pikku_queue.options import RateLimit, Repeat
from pikku_queue.outcomes import Delivery, Outcome, Retry
from pikku_queue.payloads import dump_payload
from pikku_queue.project import path_from_url
from pikku_queue.pull import run_pull_worker
from pikku_queue.records import (
    CancelResult,
    DeadLetterRecord,
    EnqueueRequest,
    FinishedBucket,
    FinishedJob,
    FinishedSummary,
    JobInfo,
    QueueCounts,
)
from pikku_queue.redact import redact_url
from pikku_queue.retention import (
    SQLITE_KEEP_COMPLETED,
    SQLITE_KEEP_FAILED,
    KeepJobs,
    keep_limits,
    parse_keep_jobs,
)

__all__ = [
    "PROCESSOR_SCHEDULE_KEY",
    "SCHEMA",
    "SqliteBackend",
    "Tx",
    "from_url",
    "path_from_url",
]

T = TypeVar("T")


class SqliteBackend(SqliteAdmin):
    """A job store in one SQLite file, safe to share between worker processes."""

    #: How long an idle worker waits between polls of the file (seconds).
    poll_interval_s = 0.05

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Clock | None = None,
        url: str | None = None,
        busy_timeout_ms: int = 30_000,
        remove_on_complete: KeepJobs = SQLITE_KEEP_COMPLETED,
        remove_on_fail: KeepJobs = SQLITE_KEEP_FAILED,
        _inline: bool = False,
    ) -> None:
        self.path = str(path)
        #: Retention (`pikku_queue.retention`): finished jobs kept per queue.
        self.remove_on_complete = remove_on_complete
        self.remove_on_fail = remove_on_fail
        #: queue → verdicts settled since its last prune (`sqlite.retention.PRUNE_EVERY`).
        self._unpruned: dict[str, int] = {}
        self.url = url or f"sqlite:///{self.path}"
        self.capabilities: Capabilities = BACKEND.capabilities
        self.clock: Clock = clock or SYSTEM_CLOCK
        #: (queue, job id) → the lease token this process holds for it.
        self._tokens: dict[tuple[str, str], int] = {}
        #: queue → when its next lease looks for jobs in a state no worker serves.
        self._next_sweep: dict[str, int] = {}
        #: queue → its dead-letter queue, as told by the workers serving it (recover_stalled).
        self._dead_letter_queues: dict[str, str | None] = {}
        #: (queue, job id) → the result waiters of this process (`watch_job`).
        self._watches: dict[tuple[str, str], set[JobWatch]] = {}
        #: Enqueues through this object, and the count each idle worker's queues last saw.
        self._enqueues = 0
        self._enqueues_seen: dict[frozenset[str], int] = {}
        #: The queues of each idle worker of this process waiting for a job (`wait_for_jobs`).
        self._job_waiters: list[tuple[frozenset[str], JobWatch]] = []
        self._watch_lock = threading.Lock()
        #: queue → its rate limit, as told by the workers serving it (`set_rate_limit`).
        self._rate_limits: dict[str, RateLimit] = {}
        self._db = ConnectionThread(
            self.path, label=self.url, busy_timeout_ms=busy_timeout_ms, inline=_inline
        )

    @property
    def closed(self) -> bool:
        return self._db.closed

    async def _read(self, fn: Tx[T]) -> T:
        """A read on the backend's own thread, for tests that inspect the file beside it
        (the methods below call `self._db` directly: one coroutine less per statement)."""
        return await self._db.read(fn)

    def _now(self) -> int:
        return self.clock.now_ms()

    def _held(
        self, queue: str, job_ids: Sequence[str], *, forget: bool
    ) -> list[tuple[str, str, int]]:
        """(queue, id, token) of the jobs among `job_ids` this process still holds a lease on."""
        take = self._tokens.pop if forget else self._tokens.__getitem__
        return [
            (queue, job_id, take((queue, job_id)))
            for job_id in job_ids
            if (queue, job_id) in self._tokens
        ]

    # ------------------------------------------------------------------ producer face

    async def enqueue(self, request: EnqueueRequest) -> str:
        return (await self.enqueue_many([request]))[0]

    async def enqueue_many(self, requests: Sequence[EnqueueRequest]) -> list[str]:
        """Store many jobs in one transaction (one `executemany`); ids in request order."""
        now = self._now()
        plain: list[tuple[Any, ...]] = []
        ids: list[str] = []
        repeats: list[tuple[int, EnqueueRequest, Repeat]] = []
        #: (index, request, row) of the jobs with a deduplication key, stored one by one.
        deduplicated: list[tuple[int, EnqueueRequest, tuple[Any, ...]]] = []
        for index, request in enumerate(requests):
            if request.repeat is not None:
                repeats.append((index, request, request.repeat))
                ids.append("")
                continue
            job_id = request.job_id or uuid.uuid4().hex
            ids.append(job_id)
            run_at = now + request.delay_ms
            row = (
                request.queue,
                job_id,
                "delayed" if request.delay_ms > 0 else "waiting",
                request.priority or 0,
                run_at,
                dump_payload(request.queue, request.payload),
                now,
                None if request.trace_context is None else dumps(dict(request.trace_context)),
            )
            if request.dedupe is not None and request.dedupe_key is not None:
                deduplicated.append((index, request, row))
            else:
                plain.append(row)
        payloads = {index: dump_payload(r.queue, r.payload) for index, r, _ in repeats}

        def tx(conn: sqlite3.Connection) -> list[str]:
            if plain:
                conn.executemany(INSERT_JOB, plain)
            result = list(ids)
            for index, request, row in deduplicated:
                assert request.dedupe is not None and request.dedupe_key is not None
                result[index] = deduplicate(
                    conn,
                    request.queue,
                    request.dedupe_key,
                    request.dedupe,
                    result[index],
                    request.delay_ms,
                    row,
                    now,
                )
            for index, request, repeat in repeats:
                result[index] = add_schedule(conn, request, repeat, payloads[index], now)
            return result

        ids_stored = await self._db.write(tx)
        self._enqueues += 1
        if self._job_waiters:  # an idle worker of this process: start the job now
            self._wake_workers({r.queue for r in requests if not r.delay_ms})
        return ids_stored

    async def set_rate_limit(self, queue: str, rate_limit: RateLimit | None) -> None:
        """The rate limit this process's leases of `queue` keep (`sqlite.limits`); the window
        it counts in is in the file, shared by every process."""
        if rate_limit is None:
            self._rate_limits.pop(queue, None)
        else:
            self._rate_limits[queue] = rate_limit

    async def set_processor_schedule(self, queue: str, repeat: Repeat | None) -> None:
        """Register a processor's own `repeat` (payload `{}`) under one key per queue.

        Idempotent: the same schedule again changes nothing (its run count and next run stay).
        A changed schedule replaces the old one: its pending next run is deleted and the new
        first run added, so a deploy with a new cron never leaves both firing. None removes
        a schedule the processor no longer declares."""
        now = self._now()
        await self._db.write(lambda conn: replace_processor_schedule(conn, queue, repeat, now))

    async def get_job(self, queue: str, job_id: str) -> JobInfo | None:
        now = self._now()

        def read(conn: sqlite3.Connection) -> tuple[Any, ...] | None:
            row: tuple[Any, ...] | None = conn.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE queue = ? AND id = ?", (queue, job_id)
            ).fetchone()
            return row

        row = await self._db.read(read)
        return None if row is None else job_info(row, now)

    async def recent_jobs(self, queue: str, limit: int = 50) -> list[JobInfo]:
        """The queue's latest jobs, newest first (the web monitor's list)."""
        now = self._now()

        def read(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return list(
                conn.execute(
                    f"SELECT {JOB_COLUMNS} FROM jobs WHERE queue = ? ORDER BY seq DESC LIMIT ?",
                    (queue, limit),
                ).fetchall()
            )

        return [job_info(row, now) for row in await self._db.read(read)]

    async def counts(self, queue: str) -> QueueCounts:
        """From the trigger-kept `job_counts` (`sqlite.counters`): a few rows, however many
        jobs the queue holds."""
        now = self._now()
        return await self._db.read(lambda conn: queue_counts(conn, queue, now))

    async def finished_since(self, queue: str, since_ms: int) -> list[FinishedJob]:
        def read(conn: sqlite3.Connection) -> list[FinishedJob]:
            rows = conn.execute(
                "SELECT enqueued_at, finished_at, state FROM jobs"
                " WHERE queue = ? AND finished_at >= ?",
                (queue, since_ms),
            ).fetchall()
            return [FinishedJob(e, f, s == "completed") for e, f, s in rows]

        return await self._db.read(read)

    async def finished_summary(self, queue: str, since_ms: int) -> FinishedSummary:
        """`finished_since` as aggregates and a bounded latency sample (`sqlite.retention`).

        Where retention may have removed jobs of one outcome inside the window (as many kept
        as its rule keeps), the summary starts at the first one kept, so the error rate and
        throughput count a span in which every finished job is still there."""

        def read(conn: sqlite3.Connection) -> FinishedSummary:
            summary = finished_summary(conn, queue, since_ms)
            start = since_ms
            for count, first, keep in (
                (summary.succeeded, summary.first_succeeded_ms, self.remove_on_complete),
                (summary.failed, summary.first_failed_ms, self.remove_on_fail),
            ):
                kept, _ = keep_limits(keep)
                if first is not None and kept is not None and count >= kept:
                    start = max(start, first)
            return summary if start == since_ms else finished_summary(conn, queue, start)

        return await self._db.read(read)

    async def finished_buckets(
        self, queue: str, since_ms: int, bucket_ms: int, sample: int = BUCKET_LATENCY_SAMPLE
    ) -> list[FinishedBucket]:
        """The web monitor's chart in SQL (`sqlite.retention.finished_buckets`): per bucket the
        counts and at most `sample` latencies, never a row per finished job."""
        return await self._db.read(
            lambda conn: finished_buckets(conn, queue, since_ms, bucket_ms, sample)
        )

    async def dead_letters(self, dlq: str, limit: int = 100) -> list[DeadLetterRecord]:
        rows = await self._db.read(lambda conn: list_records(conn, dlq, limit))
        records = (as_record(i, p) for i, p in rows)
        return [record for record in records if record is not None]

    async def replay(self, dlq: str, ids: Sequence[str] | None = None) -> int:
        now = self._now()
        return await self._db.write(lambda conn: replay_records(conn, dlq, ids, now))

    async def run_worker(self, options: WorkerOptions) -> WorkerReport:
        return await run_pull_worker(self, self, options)

    async def close(self) -> None:
        await self._db.close()

    # ------------------------------------------------------------------ consumer face

    async def reserve(
        self,
        queue: str,
        limit: int,
        lease_ms: int,
        worker_id: str,
        max_active: int | None = None,
    ) -> list[Delivery]:
        if limit <= 0:
            return []
        now = self._now()

        # A job in a state no worker serves is looked for at this process's first lease of the
        # queue, then every SWEEP_EVERY_MS (a scan: too slow for every lease).
        sweep = now >= self._next_sweep.get(queue, 0)

        def tx(conn: sqlite3.Connection) -> list[Leased]:
            if queue_paused(conn, queue):  # paused from the monitor (`sqlite.admin`)
                return []
            dead_letter_queue = self._dead_letter_queues.get(queue)
            return lease_jobs(
                conn,
                queue,
                limit,
                lease_ms,
                worker_id,
                max_active,
                dead_letter_queue,
                now,
                sweep,
                self._rate_limits.get(queue),
            )

        leased = await self._db.write(tx)
        if sweep:
            self._next_sweep[queue] = now + SWEEP_EVERY_MS
        deliveries = []
        for job in leased:
            self._tokens[(queue, job.id)] = job.token
            deliveries.append(
                Delivery(
                    job_id=job.id,
                    queue=queue,
                    payload=job.payload,
                    attempt=job.attempt,
                    enqueued_at_ms=job.enqueued_at,
                    progress=self._progress_sink(queue, job.id, job.token),
                    trace_context=job.meta,
                    payload_encoding="json" if job.refused is None else job.refused.encoding,
                    payload_error=None if job.refused is None else job.refused.error,
                    record_error=None if job.invalid is None else job.invalid.error,
                )
            )
        return deliveries

    def _progress_sink(self, queue: str, job_id: str, token: int) -> Callable[[Any], Any]:
        async def sink(data: dict[str, Any]) -> None:
            text = dumps(data)

            def tx(conn: sqlite3.Connection) -> None:
                conn.execute(
                    "UPDATE jobs SET progress = ? WHERE queue = ? AND id = ? AND token = ?",
                    (text, queue, job_id, token),
                )

            await self._db.write(tx)

        return sink

    async def settle(
        self, delivery: Delivery, outcome: Outcome, dead_letter_queue: str | None
    ) -> None:
        await self.settle_many([(delivery, outcome)], dead_letter_queue)

    async def settle_many(
        self, settled: Sequence[tuple[Delivery, Outcome]], dead_letter_queue: str | None
    ) -> None:
        """Apply many verdicts in one transaction (a batch processor's items)."""
        now = self._now()
        work = [(d, o, self._tokens.pop((d.queue, d.job_id), -1)) for d, o in settled]

        def tx(conn: sqlite3.Connection) -> None:
            for delivery, outcome, token in work:
                settle(conn, delivery, outcome, token, dead_letter_queue, now)

        await self._db.write(tx)
        if self._watches:  # a waiter in this process (`JobHandle.result()`): wake it now
            self._notify(settled)
        for delivery, outcome in settled:
            if not isinstance(outcome, Retry):
                self._unpruned[delivery.queue] = self._unpruned.get(delivery.queue, 0) + 1
        for queue in {d.queue for d, _ in settled}:
            if self._unpruned.get(queue, 0) >= PRUNE_EVERY:
                self._unpruned[queue] = 0
                await self.prune(queue)

    # ------------------------------------------------------------------ result waits

    @contextlib.asynccontextmanager
    async def watch_job(self, queue: str, job_id: str) -> AsyncIterator[JobWatch]:
        """`WatchesJobs`: woken when a worker of this process (this backend object, on any
        thread or loop) settles the job. A worker in another process tells nobody, so the
        waiter keeps its bounded polling (`recheck_s` None) and a settle here cuts it short."""
        watch = JobWatch()
        key = (queue, job_id)
        with self._watch_lock:
            self._watches.setdefault(key, set()).add(watch)
        try:
            yield watch
        finally:
            with self._watch_lock:
                watches = self._watches.get(key)
                if watches is not None:
                    watches.discard(watch)
                    if not watches:
                        del self._watches[key]

    async def wait_for_jobs(self, queues: Iterable[str], timeout_s: float) -> None:
        """`Notified`: an idle worker of this process wakes when a job ready now is enqueued
        through this backend object (a producer in the same process); a producer elsewhere
        is seen at the next poll, as before."""
        names = frozenset(queues)
        if self._enqueues != self._enqueues_seen.get(names, -1):
            # Something was enqueued here since this worker last waited (while it was leasing,
            # perhaps after its lease looked): let it look again at once.
            self._enqueues_seen[names] = self._enqueues
            await asyncio.sleep(0)
            return
        watch = JobWatch()
        entry = (names, watch)
        with self._watch_lock:
            self._job_waiters.append(entry)
        try:
            await watch.changed(timeout_s)
        finally:
            with self._watch_lock:
                self._job_waiters.remove(entry)
            self._enqueues_seen[names] = self._enqueues

    def _wake_workers(self, queues: set[str]) -> None:
        with self._watch_lock:
            woken = [watch for names, watch in self._job_waiters if not names.isdisjoint(queues)]
        for watch in woken:
            watch.notify()

    def _notify(self, settled: Sequence[tuple[Delivery, Outcome]]) -> None:
        with self._watch_lock:
            woken = [w for d, _ in settled for w in self._watches.get((d.queue, d.job_id), ())]
        for watch in woken:
            watch.notify()

    async def prune(self, queue: str) -> int:
        """Apply retention to `queue` now (workers do it every `PRUNE_EVERY` verdicts); return
        how many finished jobs went. Chunked: each delete is its own short transaction."""
        now = self._now()
        removed = 0
        for states, keep in (
            (COMPLETED, self.remove_on_complete),
            (FAILED, self.remove_on_fail),
            (("cancelled",), self.remove_on_fail),  # kept like failed jobs
        ):

            def cut(
                conn: sqlite3.Connection, s: tuple[str, ...] = states, k: KeepJobs = keep
            ) -> tuple[int, int] | None:
                return prune_cutoff(conn, queue, s, k, now)

            cutoff = await self._db.read(cut)
            while cutoff is not None:

                def chunk(
                    conn: sqlite3.Connection,
                    s: tuple[str, ...] = states,
                    c: tuple[int, int] = cutoff,
                ) -> int:
                    return delete_chunk(conn, queue, s, c)

                deleted = await self._db.write(chunk)
                removed += deleted
                if deleted < DELETE_CHUNK:
                    break
        return removed

    async def extend_lease(self, queue: str, job_ids: Sequence[str], lease_ms: int) -> None:
        until = self._now() + lease_ms
        held = self._held(queue, job_ids, forget=False)
        if held:
            await self._db.write(lambda conn: extend_leases(conn, until, held))

    async def release(self, queue: str, job_ids: Sequence[str]) -> None:
        held = self._held(queue, job_ids, forget=True)
        now = self._now()
        if held:
            await self._db.write(lambda conn: release_leases(conn, held, now))

    async def cancel_job(self, queue: str, job_id: str) -> CancelResult:
        """`CancelsJobs`: remove a waiting or delayed job; flag a running one on its row, for
        the worker holding its lease (`cancel_requested`, polled) to stop it."""
        return await self._db.write(lambda conn: cancel(conn, queue, job_id))

    async def cancel_requested(self, queue: str, job_ids: Sequence[str]) -> set[str]:
        """`CancelRequests`: which of the jobs this worker runs were asked to stop."""
        ids = list(job_ids)
        return await self._db.read(lambda conn: requested(conn, queue, ids))

    async def recover_stalled(
        self, queue: str, max_stalled_count: int, dead_letter_queue: str | None = None
    ) -> list[str]:
        now = self._now()
        self._dead_letter_queues[queue] = dead_letter_queue
        return await self._db.write(
            lambda conn: recover_expired(conn, queue, max_stalled_count, dead_letter_queue, now)
        )

    async def active_count(self, queue: str) -> int:
        return await self._db.read(lambda conn: stored_count(conn, queue, "active"))

    async def live_lease_count(self, queue: str) -> int:
        """Active jobs whose lease has not ended (`backend.LiveLeases`); a lease that ends
        later than `fields.MAX_LEASE_MS` from now is no live worker's (`leases.recover_expired`)."""
        now = self._now()

        def read(conn: sqlite3.Connection) -> int:
            return int(
                conn.execute(
                    "SELECT count(*) FROM jobs WHERE queue = ? AND state = 'active'"
                    " AND lease_until >= ? AND lease_until <= ?",
                    (queue, now, now + MAX_LEASE_MS),
                ).fetchone()[0]
            )

        return await self._db.read(read)

    async def pending_count(self, queue: str) -> int:
        """Jobs a burst worker must still wait for: waiting, active, and delayed ones that are
        not the next run of a repeat schedule (those would keep a burst worker alive forever).
        A paused queue has none: a burst worker does not wait for a resume."""

        def read(conn: sqlite3.Connection) -> int:
            return 0 if queue_paused(conn, queue) else pending(conn, queue)

        return await self._db.read(read)

    async def next_due_ms(self, queues: Iterable[str]) -> int | None:
        """The earliest time a delayed job of these queues becomes due, or an open rate-limit
        window of theirs ends (None: neither). A due time that is no time (text, a blob, past `fields.MAX_STORED_INT`) is left out:
        the next lease makes such a job due and refuses it."""
        names = list(queues)
        limited = [q for q in names if q in self._rate_limits]
        now = self._now()

        def read(conn: sqlite3.Connection) -> int | None:
            times = [
                conn.execute(
                    "SELECT min(run_at) FROM jobs WHERE queue = ? AND state = 'delayed'"
                    " AND run_at <= ?",
                    (q, MAX_STORED_INT),
                ).fetchone()[0]
                for q in names
            ]
            # a rate-limited queue's jobs may start again when its window ends
            times += [window_end(conn, q, now) for q in limited]
            due = [int(t) for t in times if t is not None]
            return min(due) if due else None

        return await self._db.read(read)


def from_url(url: str) -> SqliteBackend:
    """`sqlite:///path.db`, with optional `?remove_on_complete=…&remove_on_fail=…`
    (`pikku_queue.retention`; defaults: `SQLITE_KEEP_COMPLETED`, `SQLITE_KEEP_FAILED`)."""
    complete, fail = retention_options(url)
    return SqliteBackend(
        path_from_url(url), url=url, remove_on_complete=complete, remove_on_fail=fail
    )


def retention_options(url: str) -> tuple[KeepJobs, KeepJobs]:
    """(remove_on_complete, remove_on_fail) of a `sqlite://` URL's query, else the defaults."""
    options: dict[str, KeepJobs] = {}
    for key, value in parse_qsl(urlsplit(url).query, keep_blank_values=True):
        if key not in ("remove_on_complete", "remove_on_fail"):
            raise BackendError(
                f"unknown parameter {key!r} in {redact_url(url)!r}; known: remove_on_complete,"
                " remove_on_fail"
            )
        options[key] = parse_keep_jobs(key, value)
    return (
        options.get("remove_on_complete", SQLITE_KEEP_COMPLETED),
        options.get("remove_on_fail", SQLITE_KEEP_FAILED),
    )
