"""`postgresql://`: jobs in the PostgreSQL database the application already has, on psycopg 3.

Why it is built the way it is:

* Enqueue inside the caller's transaction. `enqueue(..., connection=conn)` (the typed client,
  `queue_job`) runs the insert on the caller's own connection: the job is visible to workers
  only when that transaction commits, and gone with a rollback; its NOTIFY is sent with the
  commit, never before (`connections` says what `conn` may be).
* Several workers, one table. Leases are `FOR UPDATE SKIP LOCKED`, each with a growing
  `lease_token` (`jobs`); a dead worker's leases expire and `recover_stalled` puts the jobs
  back (or dead-letters them past `max_stalled_count`).
* No polling when idle: an idle worker waits on LISTEN (`listener`) and leases within
  milliseconds of the commit that made a job ready; the poll interval is only the fallback.
* Verdicts settled together share one statement: completions that arrive while a settle is
  in flight go in the next one (a group commit), so 50 slots finishing at once cost a few
  round trips, not 50.
* The schema is the backend's own, created and migrated on first use (`schema`), under an
  advisory lock so that processes starting together migrate once.
* Connections are per event loop (psycopg's are bound to the loop that opened them):
  `enqueue_sync` from Django runs each call in a new loop, whose pool closes with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import psycopg

from pikku_queue.adapters.postgresql import BACKEND
from pikku_queue.adapters.postgresql.admin import (
    CLEAN_CHUNK,
    check_cleanable,
    clean_chunk,
    job_columns,
    job_info_of,
    list_page,
    promote,
    queue_paused,
    remove,
    retry_failed,
    set_paused,
)
from pikku_queue.adapters.postgresql.connections import (
    AsyncTx,
    Tx,
    bind_connection,
    raw_connection,
    tx_of,
)
from pikku_queue.adapters.postgresql.dead_letters import list_records, replay_records
from pikku_queue.adapters.postgresql.jobs import (
    Leased,
    NewJob,
    Statements,
    cancel,
    insert_jobs,
    lease_jobs,
    recover_expired,
    settle_all,
)
from pikku_queue.adapters.postgresql.limits import deduplicate, free_keys, window_end
from pikku_queue.adapters.postgresql.listener import FinishedListener, FinishWatch, Listener
from pikku_queue.adapters.postgresql.pool import ConnectionPool
from pikku_queue.adapters.postgresql.schedules import (
    add_next_instance,
    add_schedule,
    replace_processor_schedule,
    server_now,
)
from pikku_queue.adapters.postgresql.schema import (
    LATEST_VERSION,
    MIGRATIONS,
    bootstrap,
    channel,
    finished_channel,
    lock_key,
)
from pikku_queue.adapters.postgresql.stats import (
    BUCKET_LATENCY_SAMPLE,
    DELETE_CHUNK,
    PRUNE_EVERY,
    counts,
    delete_chunk,
    finished_buckets,
    finished_since,
    finished_summary,
    prune_cutoff,
)
from pikku_queue.adapters.postgresql.url import PostgresSettings, parse_url
from pikku_queue.adapters.sqlite.codec import dumps
from pikku_queue.backend import WorkerOptions, WorkerReport
from pikku_queue.capabilities import Capabilities
from pikku_queue.clock import SYSTEM_CLOCK, Clock
from pikku_queue.errors import BackendError
from pikku_queue.options import RateLimit, Repeat
from pikku_queue.outcomes import Cancelled, Completed, Delivery, Outcome, Retry
from pikku_queue.payloads import dump_payload
from pikku_queue.pull import run_pull_worker
from pikku_queue.records import (
    CancelResult,
    DeadLetterRecord,
    EnqueueRequest,
    FinishedBucket,
    FinishedJob,
    FinishedSummary,
    JobInfo,
    JobPage,
    JobState,
    QueueCounts,
)
from pikku_queue.redact import redact_url

__all__ = ["PostgresBackend", "from_url"]

logger = logging.getLogger("pikku_queue.postgresql")
T = TypeVar("T")
#: One verdict to settle: the delivery, its outcome, the lease token, the dead-letter queue.
Settle = tuple[Delivery, Outcome, int, str | None]


class PostgresBackend:
    """A job store in a PostgreSQL schema, shared by any number of worker processes."""

    #: How long an idle worker waits for a notification before it looks anyway (seconds).
    poll_interval_s = 0.5

    def __init__(self, url: str, *, settings: PostgresSettings | None = None) -> None:
        self.url = url
        self.settings = settings or parse_url(url)
        self.capabilities: Capabilities = BACKEND.capabilities
        #: The monitor's "now"; every stored time is the server's (`jobs`).
        self.clock: Clock = SYSTEM_CLOCK
        schema = self.settings.schema
        self.statements = Statements(schema, channel(schema), finished_channel(schema))
        #: Retention (`pikku_queue.retention`): finished jobs kept per queue.
        self.remove_on_complete = self.settings.remove_on_complete
        self.remove_on_fail = self.settings.remove_on_fail
        #: (queue, job id) → the lease token this process holds for it.
        self._tokens: dict[tuple[str, str], int] = {}
        #: queue → its dead-letter queue, as told by the workers serving it (recover_stalled).
        self._dead_letter_queues: dict[str, str | None] = {}
        #: queue → its rate limit, as told by the workers serving it (`set_rate_limit`).
        self._rate_limits: dict[str, RateLimit] = {}
        #: queue → verdicts settled since its last prune.
        self._unpruned: dict[str, int] = {}
        self._loops: dict[asyncio.AbstractEventLoop, _LoopState] = {}
        self._migrated = False
        self._closed = False

    def __repr__(self) -> str:
        return f"PostgresBackend({redact_url(self.url)!r})"

    @property
    def closed(self) -> bool:
        return self._closed

    # ------------------------------------------------------------------ connections

    async def _state(self) -> _LoopState:
        if self._closed:
            raise BackendError(f"{redact_url(self.url)} is closed")
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is None:
            state = _LoopState(self)
            await state.open(lambda: self._loops.pop(loop, None))
            self._loops[loop] = state
        if not self._migrated:
            await self.migrate(state)
        return state

    async def migrate(self, state: _LoopState | None = None) -> None:
        """Create or migrate the schema (once per process; safe when several start at once)."""
        state = state or await self._state()
        async with state.migrating:
            if self._migrated:
                return
            async with state.pool.connection() as conn, conn.transaction():
                tx = AsyncTx(conn)
                s = self.settings.schema
                await tx.run("SELECT pg_advisory_xact_lock(hashtext(%s))", (lock_key(s),))
                await tx.run(bootstrap(s))
                [(current,)] = await tx.rows(f"SELECT coalesce(max(version), 0) FROM {s}.version")
                if current > LATEST_VERSION:
                    raise BackendError(
                        f"schema {s!r} is at version {current}, newer than this pikku-queue"
                        f" knows ({LATEST_VERSION}): upgrade pikku-queue"
                    )
                for version in sorted(v for v in MIGRATIONS if v > current):
                    await tx.run(MIGRATIONS[version](s))
                    await tx.run(f"INSERT INTO {s}.version (version) VALUES (%s)", (version,))
            self._migrated = True

    async def _run(self, fn: Callable[[Tx], Awaitable[T]], *, transaction: bool = False) -> T:
        """`fn` on a pooled connection: one autocommit statement group, or a transaction."""
        state = await self._state()
        async with state.pool.connection() as conn:
            if not transaction:
                return await fn(AsyncTx(conn))
            async with conn.transaction():
                return await fn(AsyncTx(conn))

    # ------------------------------------------------------------------ producer face

    async def enqueue(self, request: EnqueueRequest) -> str:
        return (await self.enqueue_many([request]))[0]

    def bind_connection(self, connection: Any) -> Any:
        """`connections.bind_connection`: Django's connection, resolved in the caller's thread."""
        return bind_connection(connection)

    async def enqueue_in_transaction(
        self, connection: Any, requests: Sequence[EnqueueRequest]
    ) -> list[str]:
        """`enqueue_many` on the caller's connection, inside its open transaction: the jobs
        exist once it commits, and never if it rolls back (`connections.raw_connection` says
        what `connection` may be)."""
        return await self.enqueue_many(requests, connection=connection)

    async def enqueue_many(
        self, requests: Sequence[EnqueueRequest], *, connection: Any = None
    ) -> list[str]:
        """Store jobs in one statement (schedules aside), ids in request order, committed at
        once on the backend's own connection, or (`connection`) in the caller's transaction."""
        plain: list[NewJob] = []
        ids: list[str] = []
        repeats: list[tuple[int, EnqueueRequest, Repeat, str]] = []
        #: (index, request, row) of the jobs with a deduplication key, stored one by one.
        deduplicated: list[tuple[int, EnqueueRequest, NewJob]] = []
        fresh = _random_ids(len(requests))
        for index, request in enumerate(requests):
            if request.delay_ms < 0:
                raise BackendError("delay must be >= 0 ms")
            data = dump_payload(request.queue, request.payload)
            if request.repeat is not None:
                repeats.append((index, request, request.repeat, data))
                ids.append("")
                continue
            job_id = request.job_id or fresh[index]
            ids.append(job_id)
            meta = None if request.trace_context is None else dumps(dict(request.trace_context))
            job = NewJob(
                request.queue,
                job_id,
                data,
                request.priority or 0,
                request.delay_ms,
                meta,
                keyed=request.job_id is not None,
            )
            if request.dedupe is not None and request.dedupe_key is not None:
                deduplicated.append((index, request, job))
            else:
                plain.append(job)
        st = self.statements

        async def write(tx: Tx) -> list[str]:
            if plain:
                await insert_jobs(tx, st, plain)
            result = list(ids)
            # keys claimed in one order (queue, then key; stable, so two jobs with one key
            # keep theirs): two batches with the same keys never wait on each other in a circle
            for index, request, job in sorted(deduplicated, key=_claim_order):
                assert request.dedupe is not None and request.dedupe_key is not None
                result[index] = await deduplicate(
                    tx,
                    st.limits,
                    request.queue,
                    request.dedupe_key,
                    request.dedupe,
                    job.id,
                    request.delay_ms,
                    partial(insert_jobs, tx, st, [job]),
                )
            if repeats:
                now = await server_now(tx, st)
                for index, request, repeat, data in repeats:
                    result[index] = await add_schedule(tx, st, request, repeat, data, now)
                for queue in sorted({r.queue for _, r, _, _ in repeats}):
                    await tx.rows(st.notify, (st.channel, queue))
            return result

        atomic = bool(repeats or deduplicated)
        if connection is not None:
            await self._state()  # the schema exists before the caller's statements need it
            raw = await raw_connection(connection)
            written: list[str] = await _on_caller(raw, write, atomic=atomic)
            return written
        return await self._run(write, transaction=atomic)

    async def set_rate_limit(self, queue: str, rate_limit: RateLimit | None) -> None:
        """The rate limit this process's leases of `queue` keep (`limits`); the window it
        counts in is a row of the schema, shared by every process on the database."""
        if rate_limit is None:
            self._rate_limits.pop(queue, None)
        else:
            self._rate_limits[queue] = rate_limit

    async def set_processor_schedule(self, queue: str, repeat: Repeat | None) -> None:
        """Register a processor's own `repeat` under one key per queue (idempotent; a changed
        schedule replaces the old one and its pending run; None removes it)."""
        st = self.statements

        async def write(tx: Tx) -> None:
            now = await server_now(tx, st)
            await replace_processor_schedule(tx, st, queue, repeat, now)
            await tx.rows(st.notify, (st.channel, queue))

        await self._run(write, transaction=True)

    async def get_job(self, queue: str, job_id: str) -> JobInfo | None:
        rows = await self._run(lambda tx: tx.rows(self._job_select("AND id = %s"), (queue, job_id)))
        return None if not rows else self._job_info(rows[0])

    async def recent_jobs(self, queue: str, limit: int = 50) -> list[JobInfo]:
        """The queue's latest jobs, newest first (the web monitor's list)."""
        rows = await self._run(
            lambda tx: tx.rows(self._job_select("ORDER BY seq DESC LIMIT %s"), (queue, limit))
        )
        return [self._job_info(row) for row in rows]

    def _job_select(self, rest: str) -> str:
        s = self.settings.schema
        return f"SELECT {job_columns(s)} FROM {s}.job WHERE name = %s {rest}"

    _job_info = staticmethod(job_info_of)

    async def counts(self, queue: str) -> QueueCounts:
        result: QueueCounts = await self._run(lambda tx: counts(tx, self.statements, queue))
        return result

    async def finished_since(self, queue: str, since_ms: int) -> list[FinishedJob]:
        result: list[FinishedJob] = await self._run(
            lambda tx: finished_since(tx, self.statements, queue, since_ms)
        )
        return result

    async def finished_summary(self, queue: str, since_ms: int) -> FinishedSummary:
        """`finished_since` as aggregates and a bounded latency sample (`stats`)."""
        result: FinishedSummary = await self._run(
            lambda tx: finished_summary(tx, self.statements, queue, since_ms)
        )
        return result

    async def finished_buckets(
        self, queue: str, since_ms: int, bucket_ms: int, sample: int = BUCKET_LATENCY_SAMPLE
    ) -> list[FinishedBucket]:
        result: list[FinishedBucket] = await self._run(
            lambda tx: finished_buckets(tx, self.statements, queue, since_ms, bucket_ms, sample)
        )
        return result

    async def dead_letters(self, dlq: str, limit: int = 100) -> list[DeadLetterRecord]:
        result: list[DeadLetterRecord] = await self._run(
            lambda tx: list_records(tx, self.statements, dlq, limit)
        )
        return result

    async def replay(self, dlq: str, ids: Sequence[str] | None = None) -> int:
        result: int = await self._run(
            lambda tx: replay_records(tx, self.statements, dlq, ids), transaction=True
        )
        return result

    # ------------------------------------------------------------------ the monitor's actions
    # `ListsJobs`, `RetriesJobs`, `RemovesJobs`, `PromotesJobs`, `PausesQueues`, `CleansJobs`
    # (`admin` says how each is done).

    async def list_jobs(
        self, queue: str, state: JobState, limit: int, cursor: str | None = None
    ) -> JobPage:
        page: JobPage = await self._run(
            lambda tx: list_page(tx, self.statements, queue, state, limit, cursor)
        )
        return page

    async def retry_job(self, queue: str, job_id: str) -> bool:
        done: bool = await self._run(
            lambda tx: retry_failed(tx, self.statements, queue, job_id), transaction=True
        )
        return done

    async def remove_job(self, queue: str, job_id: str) -> bool:
        st = self.statements

        async def write(tx: Tx) -> bool:
            removed = await remove(tx, st, queue, job_id)
            if removed:
                await free_keys(tx, st.limits, queue, job_id)
            return removed

        done: bool = await self._run(write, transaction=True)
        return done

    async def promote_job(self, queue: str, job_id: str) -> bool:
        done: bool = await self._run(
            lambda tx: promote(tx, self.statements, queue, job_id), transaction=True
        )
        return done

    async def pause_queue(self, queue: str) -> None:
        await self._run(lambda tx: set_paused(tx, self.statements, queue, True))

    async def resume_queue(self, queue: str) -> None:
        await self._run(lambda tx: set_paused(tx, self.statements, queue, False), transaction=True)

    async def is_paused(self, queue: str) -> bool:
        paused: bool = await self._run(lambda tx: queue_paused(tx, self.statements, queue))
        return paused

    async def clean_jobs(self, queue: str, state: JobState, grace_ms: int = 0) -> int:
        check_cleanable(state)
        grace = max(int(grace_ms), 0)
        removed = 0
        while True:
            deleted: int = await self._run(
                lambda tx: clean_chunk(tx, self.statements, queue, state, grace)
            )
            removed += deleted
            if deleted < CLEAN_CHUNK:
                return removed

    async def run_worker(self, options: WorkerOptions) -> WorkerReport:
        state = await self._state()
        await state.listener.ready()
        return await run_pull_worker(self, self, options)

    async def close(self) -> None:
        """Close this event loop's connections (other loops' close when they shut down)."""
        self._closed = True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        state = self._loops.pop(loop, None)
        if state is not None:
            await state.close()

    # ------------------------------------------------------------------ consumer face

    @contextlib.asynccontextmanager
    async def watch_finished(self, queue: str) -> AsyncIterator[FinishWatch]:
        """`NotifiesFinished`: wake-ups when a job of `queue` finishes (`listener`)."""
        state = await self._state()
        async with state.finished.watch(queue) as watch:
            yield watch

    async def wait_for_jobs(self, queues: Iterable[str], timeout_s: float) -> None:
        """Return when a notification says a job may be ready, or after `timeout_s`."""
        await (await self._state()).listener.wait(timeout_s)

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
        st = self.statements
        rate = self._rate_limits.get(queue)
        leased: list[Leased] = await self._run(
            lambda tx: lease_jobs(tx, st, queue, limit, lease_ms, worker_id, max_active, rate),
            transaction=max_active is not None or rate is not None,
        )
        scheduled = [job for job in leased if job.schedule_key is not None]
        if scheduled:
            await self._add_next_runs(queue, scheduled)
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
                    trace_context=job.context,
                    payload_encoding="json" if job.refused is None else job.refused.encoding,
                    payload_error=None if job.refused is None else job.refused.error,
                    record_error=None if job.invalid is None else job.invalid.error,
                )
            )
        return deliveries

    async def _add_next_runs(self, queue: str, runs: list[Leased]) -> None:
        """The run after each leased run of a schedule. Its own transaction: if it fails the
        leased runs are given back, so the next lease adds it (a run's id carries its time:
        adding it twice adds it once)."""
        st = self.statements

        async def write(tx: Tx) -> None:
            now = await server_now(tx, st)
            for job in runs:
                assert job.schedule_key is not None
                await add_next_instance(tx, st, queue, job.schedule_key, job.start_after, now)

        try:
            await self._run(write, transaction=True)
        except BaseException:
            with contextlib.suppress(Exception):
                await self.release(queue, [job.id for job in runs])
            raise

    def _progress_sink(self, queue: str, job_id: str, token: int) -> Callable[[Any], Any]:
        async def sink(data: dict[str, Any]) -> None:
            text = dumps(data)
            await self._run(
                lambda tx: tx.run(self.statements.progress, (text, queue, job_id, token))
            )

        return sink

    async def settle(
        self, delivery: Delivery, outcome: Outcome, dead_letter_queue: str | None
    ) -> None:
        await self.settle_many([(delivery, outcome)], dead_letter_queue)

    async def settle_many(
        self, settled: Sequence[tuple[Delivery, Outcome]], dead_letter_queue: str | None
    ) -> None:
        """Apply verdicts; those submitted while a settle is in flight share the next one."""
        work = [
            (d, o, self._tokens.pop((d.queue, d.job_id), -1), dead_letter_queue) for d, o in settled
        ]
        state = await self._state()
        await state.settler.submit(work)
        for delivery, outcome in settled:
            if not isinstance(outcome, Retry):
                self._unpruned[delivery.queue] = self._unpruned.get(delivery.queue, 0) + 1
        for queue in {d.queue for d, _ in settled}:
            if self._unpruned.get(queue, 0) >= PRUNE_EVERY:
                self._unpruned[queue] = 0
                await self.prune(queue)

    async def _apply(self, work: list[Settle]) -> None:
        """One settle round trip: completions and retries alone are one statement; a failure
        for good (a record to write) makes it a transaction."""
        st = self.statements
        simple = all(isinstance(o, Completed | Retry | Cancelled) for _, o, _, _ in work)
        await self._run(lambda tx: settle_all(tx, st, work), transaction=not simple)

    async def prune(self, queue: str) -> int:
        """Apply retention to `queue` now (workers do it every `PRUNE_EVERY` verdicts); return
        how many finished jobs went, `DELETE_CHUNK` per statement."""
        st = self.statements
        removed = 0
        for states, keep in (
            ("state = 'completed'", self.remove_on_complete),
            ("state = 'failed'", self.remove_on_fail),
            ("state = 'cancelled'", self.remove_on_fail),  # kept like failed jobs
        ):
            cutoff = await self._run(
                partial(prune_cutoff, st=st, queue=queue, states=states, keep=keep)
            )
            while cutoff is not None:
                deleted = await self._run(
                    partial(delete_chunk, st=st, queue=queue, states=states, cutoff=cutoff)
                )
                removed += deleted
                if deleted < DELETE_CHUNK:
                    break
        return removed

    def _held(
        self, queue: str, job_ids: Sequence[str], *, forget: bool
    ) -> tuple[list[str], list[int]]:
        take = self._tokens.pop if forget else self._tokens.__getitem__
        held = [(j, take((queue, j))) for j in job_ids if (queue, j) in self._tokens]
        return [j for j, _ in held], [t for _, t in held]

    async def extend_lease(self, queue: str, job_ids: Sequence[str], lease_ms: int) -> None:
        ids, tokens = self._held(queue, job_ids, forget=False)
        if ids:
            await self._run(
                lambda tx: tx.run(self.statements.extend, (lease_ms, ids, tokens, queue))
            )

    async def release(self, queue: str, job_ids: Sequence[str]) -> None:
        ids, tokens = self._held(queue, job_ids, forget=True)
        if ids:
            st = self.statements

            async def write(tx: Tx) -> None:
                await tx.run(st.release, (ids, tokens, queue))
                await tx.rows(st.notify, (st.channel, queue))

            await self._run(write, transaction=True)

    async def cancel_job(self, queue: str, job_id: str) -> CancelResult:
        """`CancelsJobs`: remove a waiting or delayed job; flag a running one on its row, for
        the worker holding its lease (any process) to stop it (`cancel_requested`)."""
        st = self.statements
        result: CancelResult = await self._run(
            lambda tx: cancel(tx, st, queue, job_id), transaction=True
        )
        return result

    async def cancel_requested(self, queue: str, job_ids: Sequence[str]) -> set[str]:
        """`CancelRequests`: which of the jobs this worker runs were asked to stop."""
        ids = list(job_ids)
        rows = await self._run(lambda tx: tx.rows(self.statements.cancel_requested, (queue, ids)))
        return {str(job_id) for (job_id,) in rows}

    async def recover_stalled(
        self, queue: str, max_stalled_count: int, dead_letter_queue: str | None = None
    ) -> list[str]:
        self._dead_letter_queues[queue] = dead_letter_queue
        result: list[str] = await self._run(
            lambda tx: recover_expired(tx, self.statements, queue, max_stalled_count,
                                       dead_letter_queue),
            transaction=True,
        )  # fmt: skip
        return result

    async def active_count(self, queue: str) -> int:
        rows = await self._run(lambda tx: tx.rows(self.statements.active, (queue,)))
        return int(rows[0][0])

    async def live_lease_count(self, queue: str) -> int:
        """Active jobs of `queue` whose lease has not expired (what a burst worker waits for)."""
        s = self.settings.schema
        rows = await self._run(
            lambda tx: tx.rows(
                f"SELECT count(*) FROM {s}.job WHERE name = %s AND state = 'active'"
                " AND lease_until >= clock_timestamp()",
                (queue,),
            )
        )
        return int(rows[0][0])

    async def pending_count(self, queue: str) -> int:
        """Jobs a burst worker must still wait for: ready, active, and delayed ones that are
        not the next run of a repeat schedule (those would keep a burst worker alive forever).
        A paused queue has none: a burst worker does not wait for a resume."""
        s = self.settings.schema
        rows = await self._run(
            lambda tx: tx.rows(
                f"SELECT count(*) FROM {s}.job WHERE name = %s"
                f" AND NOT EXISTS (SELECT 1 FROM {s}.paused WHERE paused.name = %s)"
                " AND (state = 'active'"
                " OR (state IN ('created', 'retry') AND (schedule_key IS NULL"
                " OR start_after <= clock_timestamp())))",
                (queue, queue),
            )
        )
        return int(rows[0][0])

    async def next_due_ms(self, queues: Iterable[str]) -> int | None:
        """The earliest time a waiting job of these queues becomes due, or an open rate-limit
        window of theirs ends (None: neither). A rate-limited queue's jobs that are due already
        wait for its window, so only its delayed ones count."""
        s = self.settings.schema
        names = list(queues)
        limited = [q for q in names if q in self._rate_limits]

        async def read(tx: Tx) -> int | None:
            rows = await tx.rows(
                # `ms` of no time at all (min of no rows) is not NULL: it is the smallest time
                f"SELECT {s}.ms(min(start_after)), min(start_after) IS NULL FROM {s}.job"
                " WHERE name = ANY(%s::text[])"
                " AND state IN ('created', 'retry')"
                " AND (start_after > clock_timestamp() OR NOT name = ANY(%s::text[]))",
                (names, limited),
            )
            [(first, none)] = rows
            times = [None if none else first, await window_end(tx, self.statements.limits, limited)]
            due = [int(t) for t in times if t is not None]
            return min(due) if due else None

        result: int | None = await self._run(read)
        return result


def _claim_order(item: tuple[int, EnqueueRequest, NewJob]) -> tuple[str, str]:
    return item[1].queue, item[1].dedupe_key or ""


async def _on_caller(
    raw: Any, write: Callable[[Tx], Awaitable[list[str]]], *, atomic: bool
) -> list[str]:
    """`write` on the caller's connection. Inside the caller's transaction it is as atomic as
    that transaction; a connection in autocommit mode would commit each statement alone, so
    a write that must be atomic (a schedule, a deduplication key) gets a transaction of its
    own there (a savepoint if the caller opened one with `transaction()`)."""
    tx = tx_of(raw)
    if not (atomic and raw.autocommit):
        return await write(tx)
    if isinstance(raw, psycopg.AsyncConnection):
        async with raw.transaction():
            return await write(tx)
    with raw.transaction():
        return await write(tx)


def _random_ids(count: int) -> list[str]:
    """`count` random ids of 32 hex digits (128 random bits, as long as uuid4().hex), drawn from
    the OS in one call: a bulk enqueue's ids cost one syscall, not one uuid4 each."""
    digits = os.urandom(16 * count).hex()
    return [digits[n : n + 32] for n in range(0, 32 * count, 32)]


@dataclass
class _Settler:
    """Group commit of verdicts: one round trip carries every verdict that arrived while the
    previous one was in flight. A round trip that fails is retried one submission at a time,
    so one bad verdict never fails the others."""

    backend: PostgresBackend
    pending: list[tuple[list[Settle], asyncio.Future[None]]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    async def submit(self, work: list[Settle]) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending.append((work, future))
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._drain())
        await future

    async def _drain(self) -> None:
        while self.pending:
            group, self.pending = self.pending, []
            try:
                await self.backend._apply([item for work, _ in group for item in work])
            except Exception as exc:
                if len(group) == 1:
                    _resolve(group[0][1], exc)
                    continue
                for work, future in group:
                    try:
                        await self.backend._apply(work)
                    except Exception as alone:
                        _resolve(future, alone)
                    else:
                        _resolve(future, None)
            else:
                for _, future in group:
                    _resolve(future, None)


def _resolve(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


class _LoopState:
    """One event loop's pool, listener and settler, closed when that loop shuts down (an
    async generator parked in the loop is what `asyncio.run` finalises on its way out)."""

    def __init__(self, backend: PostgresBackend) -> None:
        settings = backend.settings
        self.pool = ConnectionPool(settings.conninfo, settings.pool_size)
        self.listener = Listener(settings.conninfo, backend.statements.channel)
        self.finished = FinishedListener(settings.conninfo, backend.statements.finished_channel)
        self.settler = _Settler(backend)
        self.migrating = asyncio.Lock()
        self._guard: AsyncGenerator[None, None] | None = None
        self._closed = False

    async def open(self, forget: Callable[[], object]) -> None:
        async def guard() -> AsyncGenerator[None, None]:
            try:
                yield
            finally:
                forget()
                await self._close()

        self._guard = guard()
        await anext(self._guard)

    async def _close(self) -> None:
        if not self._closed:
            self._closed = True
            await self.listener.close()
            await self.finished.close()
            with contextlib.suppress(Exception):
                await self.pool.close()

    async def close(self) -> None:
        guard, self._guard = self._guard, None
        if guard is not None:
            with contextlib.suppress(Exception):
                await guard.aclose()
        await self._close()


def from_url(url: str) -> PostgresBackend:
    """The factory `pikku_queue.adapters.connect` calls for postgresql:// URLs."""
    return PostgresBackend(url)
