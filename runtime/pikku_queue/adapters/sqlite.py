"""`sqlite:///path.db`: the embedded default backend, on stdlib `sqlite3`.

Why it is built the way it is:

* One file, several worker processes. Every state change is a short `BEGIN IMMEDIATE`
  transaction, so two workers can never lease the same job, and the global `max_concurrency`
  check happens inside the same transaction as the lease.
* Nothing lost on SIGKILL. A leased job carries `lease_until`; workers extend it while the job
  runs. When a worker dies the lease expires, `recover_stalled` puts the job back (or
  dead-letters it past `max_stalled_count`). WAL with `synchronous=NORMAL` keeps every committed
  transaction across a process crash (not across a power cut: that would need `FULL`).
* Cheap polling with a large backlog. Partial indexes hold only the rows each query needs
  (waiting by priority then sequence, delayed by due time, active by lease), so leasing the next
  job costs the same with 10 or 100,000 jobs waiting.
* The event loop never blocks on the file. All statements run on one thread per backend, and
  writes issued while a transaction runs are grouped into the next one (group commit): 50
  processors finishing together cost one commit, not 50. A write that raises is rolled back
  and the others of its group are re-run alone, so it never takes them down with it.
* Jobs carry a lease `token` that grows with every lease. A worker whose lease expired and was
  taken over cannot settle or extend the job any more: at-least-once, never a lost update.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from pikku_queue.backend import (
    DeadLetterRecord,
    EnqueueRequest,
    FinishedJob,
    JobInfo,
    JobState,
    QueueCounts,
    WorkerOptions,
    WorkerReport,
)
from pikku_queue.capabilities import CAPABILITIES, Capabilities
from pikku_queue.clock import SYSTEM_CLOCK, Clock
from pikku_queue.cron import parse_cron
from pikku_queue.engine import Completed, DeadLetter, Delivery, ErrorInfo, Outcome, Retry
from pikku_queue.errors import BackendError
from pikku_queue.options import Repeat

T = TypeVar("T")
#: The `schedules` key of a processor's own `repeat`: one per queue, so a changed schedule
#: replaces the old one (per-job schedules are keyed by their job_id or a hash).
PROCESSOR_SCHEDULE_KEY = "pikku:processor"
Tx = Callable[[sqlite3.Connection], T]

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY,
    queue TEXT NOT NULL,
    id TEXT NOT NULL,
    state TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    run_at INTEGER NOT NULL,
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    stalls INTEGER NOT NULL DEFAULT 0,
    token INTEGER NOT NULL DEFAULT 0,
    lease_until INTEGER,
    worker TEXT,
    progress TEXT,
    result TEXT,
    error TEXT,
    enqueued_at INTEGER NOT NULL,
    finished_at INTEGER,
    schedule TEXT,
    UNIQUE (queue, id)
);
CREATE INDEX IF NOT EXISTS jobs_ready ON jobs (queue, priority, seq) WHERE state = 'waiting';
CREATE INDEX IF NOT EXISTS jobs_delayed ON jobs (queue, run_at) WHERE state = 'delayed';
CREATE INDEX IF NOT EXISTS jobs_active ON jobs (queue, lease_until) WHERE state = 'active';
CREATE INDEX IF NOT EXISTS jobs_finished ON jobs (queue, finished_at)
    WHERE finished_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS schedules (
    queue TEXT NOT NULL,
    key TEXT NOT NULL,
    cron TEXT,
    every INTEGER,
    max_runs INTEGER,
    runs INTEGER NOT NULL DEFAULT 0,
    payload TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, key)
);
"""

_FINAL = ("completed", "failed", "dead_lettered")
_JOB_COLUMNS = (
    "id, queue, state, payload, attempts, progress, result, error, enqueued_at, finished_at, run_at"
)


def _dumps(value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise BackendError(f"payload is not JSON-serialisable: {exc}") from exc


def _error_from_json(text: str | None) -> ErrorInfo | None:
    if not text:
        return None
    data = json.loads(text)
    return ErrorInfo(
        type=str(data.get("type", "")),
        message=str(data.get("message", "")),
        traceback=str(data.get("traceback", "")),
    )


@dataclass(frozen=True)
class _Leased:
    id: str
    payload: Any
    attempt: int
    enqueued_at: int
    token: int


def _schedule_key(request: EnqueueRequest, repeat: Repeat) -> str:
    if request.job_id is not None:
        return request.job_id
    basis = _dumps([repeat.cron, repeat.every, request.payload])
    return hashlib.sha1(basis.encode()).hexdigest()[:16]


def _first_run(repeat: Repeat, now: int) -> int:
    # `every` fires at once and then every N ms; `cron` waits for its next fire time.
    if repeat.cron is not None:
        return parse_cron(repeat.cron).next_after(now)
    return now


def _next_run(cron: str | None, every: int | None, last_run: int, now: int) -> int:
    if cron is not None:
        return parse_cron(cron).next_after(max(last_run, now))
    assert every is not None
    return max(last_run + every, now)


class SqliteBackend:
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
        _inline: bool = False,
    ) -> None:
        self.path = str(path)
        self.url = url or f"sqlite:///{self.path}"
        self.capabilities: Capabilities = CAPABILITIES["sqlite"]
        self.clock: Clock = clock or SYSTEM_CLOCK
        self._inline = _inline
        self._lock = threading.Lock()
        self._pending: list[tuple[Tx[Any], asyncio.AbstractEventLoop, asyncio.Future[Any]]] = []
        self._flush_scheduled = False
        self._tokens: dict[tuple[str, str], int] = {}
        #: queue → its dead-letter queue, as told by the workers serving it (recover_stalled).
        self._dead_letter_queues: dict[str, str | None] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._closed = False
        if not _inline:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pikku-sqlite")
        self._conn = self._open(busy_timeout_ms)

    @property
    def closed(self) -> bool:
        return self._closed

    # ------------------------------------------------------------------ plumbing

    def _open(self, busy_timeout_ms: int) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=busy_timeout_ms / 1000
        )
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        if self.path != ":memory:":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        # One transaction, so processes opening a fresh file together do not race.
        try:
            conn.executescript("BEGIN IMMEDIATE;" + SCHEMA + "COMMIT;")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return conn

    def _run_group(self, group: list[tuple[Tx[Any], asyncio.AbstractEventLoop, Any]]) -> None:
        """Run writes in one transaction and hand every result back to the loop that asked.

        Optimistic: the whole group runs in one transaction; only if a write raises is it
        rolled back and every write re-run alone, so one bad write never undoes the others
        and the common case pays no savepoints."""
        try:
            results = self._transaction([fn for fn, _, _ in group])
        except Exception as exc:
            if len(group) == 1:
                results = [(False, exc)]
            else:
                results = []
                for fn, _, _ in group:
                    try:
                        results.extend(self._transaction([fn]))
                    except Exception as alone:
                        results.append((False, alone))
        for (_, loop, future), (ok, value) in zip(group, results, strict=True):
            if self._inline:
                _resolve(future, ok, value)
            else:
                with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
                    loop.call_soon_threadsafe(_resolve, future, ok, value)

    def _transaction(self, fns: list[Tx[Any]]) -> list[tuple[bool, Any]]:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            values = [(True, fn(conn)) for fn in fns]
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return values

    def _flush(self) -> None:
        with self._lock:
            group, self._pending = self._pending, []
            self._flush_scheduled = False
        if group:
            self._run_group(group)

    async def _write(self, fn: Tx[T]) -> T:
        if self._closed:
            raise BackendError(f"{self.url} is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        if self._inline:
            await asyncio.sleep(0)  # still a real suspension point, like every other backend
            with self._lock:
                self._run_group([(fn, loop, future)])
            return await future
        with self._lock:
            self._pending.append((fn, loop, future))
            schedule = not self._flush_scheduled
            self._flush_scheduled = True
        if schedule:
            assert self._executor is not None
            self._executor.submit(self._flush)
        return await future

    async def _read(self, fn: Tx[T]) -> T:
        if self._closed:
            raise BackendError(f"{self.url} is closed")
        if self._inline:
            await asyncio.sleep(0)
            with self._lock:
                return fn(self._conn)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, self._conn)

    def _now(self) -> int:
        return self.clock.now_ms()

    # ------------------------------------------------------------------ producer face

    async def enqueue(self, request: EnqueueRequest) -> str:
        return (await self.enqueue_many([request]))[0]

    async def enqueue_many(self, requests: Sequence[EnqueueRequest]) -> list[str]:
        """Store many jobs in one transaction (one `executemany`); ids in request order."""
        now = self._now()
        plain: list[tuple[Any, ...]] = []
        ids: list[str] = []
        repeats: list[tuple[int, EnqueueRequest, Repeat]] = []
        for index, request in enumerate(requests):
            if request.delay_ms < 0:
                raise BackendError("delay must be >= 0 ms")
            if request.repeat is not None:
                repeats.append((index, request, request.repeat))
                ids.append("")
                continue
            job_id = request.job_id or uuid.uuid4().hex
            ids.append(job_id)
            run_at = now + request.delay_ms
            plain.append(
                (
                    request.queue,
                    job_id,
                    "delayed" if request.delay_ms > 0 else "waiting",
                    request.priority or 0,
                    run_at,
                    _dumps(request.payload),
                    now,
                )
            )
        payloads = {index: _dumps(request.payload) for index, request, _ in repeats}

        def tx(conn: sqlite3.Connection) -> list[str]:
            if plain:
                conn.executemany(
                    "INSERT INTO jobs (queue, id, state, priority, run_at, payload, enqueued_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (queue, id) DO NOTHING",
                    plain,
                )
            result = list(ids)
            for index, request, repeat in repeats:
                result[index] = self._add_schedule(conn, request, repeat, payloads[index], now)
            return result

        return await self._write(tx)

    def _add_schedule(
        self,
        conn: sqlite3.Connection,
        request: EnqueueRequest,
        repeat: Repeat,
        payload: str,
        now: int,
    ) -> str:
        key = _schedule_key(request, repeat)
        existing = conn.execute(
            "SELECT id FROM jobs WHERE queue = ? AND schedule = ? AND state IN "
            "('waiting', 'delayed', 'active') ORDER BY run_at LIMIT 1",
            (request.queue, key),
        ).fetchone()
        if existing is not None:
            return str(existing[0])
        conn.execute(
            "INSERT INTO schedules (queue, key, cron, every, max_runs, runs, payload, priority)"
            " VALUES (?, ?, ?, ?, ?, 0, ?, ?) ON CONFLICT (queue, key) DO UPDATE SET"
            " cron = excluded.cron, every = excluded.every, max_runs = excluded.max_runs,"
            " runs = 0, payload = excluded.payload, priority = excluded.priority",
            (
                request.queue,
                key,
                repeat.cron,
                repeat.every,
                repeat.limit,
                payload,
                request.priority or 0,
            ),
        )
        first = _first_run(repeat, now + request.delay_ms)
        return self._add_instance(conn, request.queue, key, first, now) or ""

    async def set_processor_schedule(self, queue: str, repeat: Repeat | None) -> None:
        """Register a processor's own `repeat` (payload `{}`) under one key per queue.

        Idempotent: the same schedule again changes nothing (its run count and next run stay).
        A changed schedule replaces the old one: its pending next run is deleted and the new
        first run added, so a deploy with a new cron never leaves both firing. None removes
        a schedule the processor no longer declares."""
        now = self._now()
        key = PROCESSOR_SCHEDULE_KEY

        def tx(conn: sqlite3.Connection) -> None:
            row = conn.execute(
                "SELECT cron, every, max_runs FROM schedules WHERE queue = ? AND key = ?",
                (queue, key),
            ).fetchone()
            wanted = None if repeat is None else (repeat.cron, repeat.every, repeat.limit)
            if (None if row is None else tuple(row)) == wanted:
                return
            conn.execute(
                "DELETE FROM jobs WHERE queue = ? AND schedule = ? AND state IN"
                " ('waiting', 'delayed')",
                (queue, key),
            )
            conn.execute("DELETE FROM schedules WHERE queue = ? AND key = ?", (queue, key))
            if repeat is not None:
                conn.execute(
                    "INSERT INTO schedules (queue, key, cron, every, max_runs, runs, payload)"
                    " VALUES (?, ?, ?, ?, ?, 0, '{}')",
                    (queue, key, repeat.cron, repeat.every, repeat.limit),
                )
                self._add_instance(conn, queue, key, _first_run(repeat, now), now)

        await self._write(tx)

    def _add_instance(
        self, conn: sqlite3.Connection, queue: str, key: str, run_at: int, now: int
    ) -> str | None:
        row = conn.execute(
            "SELECT max_runs, runs, payload, priority FROM schedules WHERE queue = ? AND key = ?",
            (queue, key),
        ).fetchone()
        if row is None:
            return None
        max_runs, runs, payload, priority = row
        if max_runs is not None and runs >= max_runs:
            return None
        job_id = f"repeat:{key}:{run_at}"
        state = "delayed" if run_at > now else "waiting"
        conn.execute(
            "INSERT INTO jobs (queue, id, state, priority, run_at, payload, enqueued_at, schedule)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (queue, id) DO NOTHING",
            (queue, job_id, state, priority, run_at, payload, run_at, key),
        )
        conn.execute(
            "UPDATE schedules SET runs = runs + 1 WHERE queue = ? AND key = ?", (queue, key)
        )
        return job_id

    async def get_job(self, queue: str, job_id: str) -> JobInfo | None:
        now = self._now()

        def read(conn: sqlite3.Connection) -> tuple[Any, ...] | None:
            row: tuple[Any, ...] | None = conn.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE queue = ? AND id = ?", (queue, job_id)
            ).fetchone()
            return row

        row = await self._read(read)
        if row is None:
            return None
        (
            id_,
            queue_,
            state,
            payload,
            attempts,
            progress,
            result,
            error,
            enqueued_at,
            finished_at,
            run_at,
        ) = row
        if state == "delayed" and run_at <= now:
            state = "waiting"
        return JobInfo(
            id=id_,
            queue=queue_,
            state=JobState(state),
            payload=_loads_or_text(payload),
            attempts_made=attempts,
            progress=json.loads(progress) if progress else None,
            result=json.loads(result) if result is not None else None,
            error=_error_from_json(error),
            enqueued_at_ms=enqueued_at,
            finished_at_ms=finished_at,
        )

    async def counts(self, queue: str) -> QueueCounts:
        now = self._now()

        def read(conn: sqlite3.Connection) -> QueueCounts:
            def one(sql: str, *args: Any) -> int:
                return int(conn.execute(sql, (queue, *args)).fetchone()[0])

            waiting = one("SELECT count(*) FROM jobs WHERE queue = ? AND state = 'waiting'")
            due = one(
                "SELECT count(*) FROM jobs WHERE queue = ? AND state = 'delayed' AND run_at <= ?",
                now,
            )
            delayed = one(
                "SELECT count(*) FROM jobs WHERE queue = ? AND state = 'delayed' AND run_at > ?",
                now,
            )
            active = one("SELECT count(*) FROM jobs WHERE queue = ? AND state = 'active'")
            final = dict(
                conn.execute(
                    "SELECT state, count(*) FROM jobs WHERE queue = ? AND finished_at IS NOT NULL"
                    " GROUP BY state",
                    (queue,),
                ).fetchall()
            )
            return QueueCounts(
                waiting=waiting + due,
                active=active,
                delayed=delayed,
                completed=int(final.get("completed", 0)),
                failed=int(final.get("failed", 0)),
                dead_lettered=int(final.get("dead_lettered", 0)),
            )

        return await self._read(read)

    async def finished_since(self, queue: str, since_ms: int) -> list[FinishedJob]:
        def read(conn: sqlite3.Connection) -> list[FinishedJob]:
            rows = conn.execute(
                "SELECT enqueued_at, finished_at, state FROM jobs"
                " WHERE queue = ? AND finished_at >= ?",
                (queue, since_ms),
            ).fetchall()
            return [FinishedJob(e, f, s == "completed") for e, f, s in rows]

        return await self._read(read)

    async def dead_letters(self, dlq: str, limit: int = 100) -> list[DeadLetterRecord]:
        def read(conn: sqlite3.Connection) -> list[tuple[str, str]]:
            rows = conn.execute(
                "SELECT id, payload FROM jobs WHERE queue = ? AND state IN ('waiting', 'delayed')"
                " ORDER BY seq LIMIT ?",
                (dlq, limit),
            ).fetchall()
            return [(str(i), str(p)) for i, p in rows]

        records = (_as_record(i, p) for i, p in await self._read(read))
        return [record for record in records if record is not None]

    async def replay(self, dlq: str, ids: Sequence[str] | None = None) -> int:
        now = self._now()

        def tx(conn: sqlite3.Connection) -> int:
            if ids is None:
                rows = conn.execute(
                    "SELECT id, payload FROM jobs WHERE queue = ? AND state IN"
                    " ('waiting', 'delayed') ORDER BY seq",
                    (dlq,),
                ).fetchall()
            else:
                rows = []
                for record_id in ids:
                    row = conn.execute(
                        "SELECT id, payload FROM jobs WHERE queue = ? AND id = ? AND state IN"
                        " ('waiting', 'delayed')",
                        (dlq, record_id),
                    ).fetchone()
                    if row is not None:
                        rows.append(row)
            replayed = 0
            for record_id, text in rows:
                record = _as_record(record_id, text)
                if record is None:
                    continue  # a plain job in that queue, not a record: nowhere to send it
                payload = _dumps(record.payload)
                cursor = conn.execute(
                    "UPDATE jobs SET state = 'waiting', attempts = 0, stalls = 0, error = NULL,"
                    " result = NULL, progress = NULL, finished_at = NULL, lease_until = NULL,"
                    " worker = NULL, run_at = ?, enqueued_at = ?, payload = ?"
                    " WHERE queue = ? AND id = ? AND state IN ('dead_lettered', 'failed')",
                    (now, now, payload, record.queue, record.job_id),
                )
                if cursor.rowcount == 0:
                    conn.execute(
                        "INSERT INTO jobs (queue, id, state, run_at, payload, enqueued_at)"
                        " VALUES (?, ?, 'waiting', ?, ?, ?) ON CONFLICT (queue, id) DO NOTHING",
                        (record.queue, record.job_id, now, payload, now),
                    )
                conn.execute("DELETE FROM jobs WHERE queue = ? AND id = ?", (dlq, record_id))
                replayed += 1
            return replayed

        return await self._write(tx)

    async def run_worker(self, options: WorkerOptions) -> WorkerReport:
        from pikku_queue.worker import run_pull_worker

        return await run_pull_worker(self, self, options)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._executor is not None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor, self._flush)
            await loop.run_in_executor(self._executor, self._conn.close)
            self._executor.shutdown(wait=True)
        else:
            with self._lock:
                self._conn.close()

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

        def tx(conn: sqlite3.Connection) -> list[_Leased]:
            conn.execute(
                "UPDATE jobs SET state = 'waiting' WHERE queue = ? AND state = 'delayed'"
                " AND run_at <= ?",
                (queue, now),
            )
            take = limit
            if max_active is not None:
                active = conn.execute(
                    "SELECT count(*) FROM jobs WHERE queue = ? AND state = 'active'", (queue,)
                ).fetchone()[0]
                take = min(take, max_active - int(active))
                if take <= 0:
                    return []
            rows = conn.execute(
                "UPDATE jobs SET state = 'active', attempts = attempts + 1, token = token + 1,"
                " lease_until = ?, worker = ? WHERE seq IN (SELECT seq FROM jobs"
                " WHERE queue = ? AND state = 'waiting' ORDER BY priority, seq LIMIT ?)"
                " RETURNING priority, seq, id, payload, attempts, enqueued_at, token, schedule,"
                " run_at",
                (now + lease_ms, worker_id, queue, take),
            ).fetchall()
            rows.sort(key=lambda r: (r[0], r[1]))
            leased: list[_Leased] = []
            for _, _, id_, text, attempts, enqueued_at, token, schedule, run_at in rows:
                try:
                    payload = json.loads(text)
                except (ValueError, RecursionError) as exc:  # too deeply nested: RecursionError
                    # Written by something other than pikku_queue: no processor can read it.
                    error = ErrorInfo(
                        type=type(exc).__name__, message=f"payload is not JSON: {exc}"
                    )
                    self._dead_letter(
                        conn,
                        queue,
                        id_,
                        text,
                        attempts,
                        DeadLetter("invalid_payload", error),
                        self._dead_letter_queues.get(queue),
                        now,
                        " WHERE queue = ? AND id = ? AND token = ? AND state = 'active'",
                        (queue, id_, token),
                    )
                    continue
                if schedule is not None:
                    cron, every = conn.execute(
                        "SELECT cron, every FROM schedules WHERE queue = ? AND key = ?",
                        (queue, schedule),
                    ).fetchone() or (None, None)
                    if cron is not None or every is not None:
                        next_run = _next_run(cron, every, run_at, now)
                        self._add_instance(conn, queue, schedule, next_run, now)
                leased.append(_Leased(id_, payload, attempts, enqueued_at, token))
            return leased

        leased = await self._write(tx)
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
                )
            )
        return deliveries

    def _progress_sink(self, queue: str, job_id: str, token: int) -> Callable[[Any], Any]:
        async def sink(data: dict[str, Any]) -> None:
            text = _dumps(data)

            def tx(conn: sqlite3.Connection) -> None:
                conn.execute(
                    "UPDATE jobs SET progress = ? WHERE queue = ? AND id = ? AND token = ?",
                    (text, queue, job_id, token),
                )

            await self._write(tx)

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
                self._apply(conn, delivery, outcome, token, dead_letter_queue, now)

        await self._write(tx)

    def _apply(
        self,
        conn: sqlite3.Connection,
        delivery: Delivery,
        outcome: Outcome,
        token: int,
        dead_letter_queue: str | None,
        now: int,
    ) -> None:
        guard = (delivery.queue, delivery.job_id, token)
        where = " WHERE queue = ? AND id = ? AND token = ? AND state = 'active'"
        if isinstance(outcome, Completed):
            conn.execute(
                "UPDATE jobs SET state = 'completed', result = ?, finished_at = ?,"
                " lease_until = NULL, worker = NULL" + where,
                (_dumps(outcome.result), now, *guard),
            )
        elif isinstance(outcome, Retry):
            state = "delayed" if outcome.delay_ms > 0 else "waiting"
            conn.execute(
                "UPDATE jobs SET state = ?, run_at = ?, error = ?, lease_until = NULL,"
                " worker = NULL" + where,
                (state, now + outcome.delay_ms, _dumps(outcome.error.as_dict()), *guard),
            )
        else:
            self._dead_letter(
                conn,
                delivery.queue,
                delivery.job_id,
                delivery.payload,
                delivery.attempt,
                outcome,
                dead_letter_queue,
                now,
                where,
                guard,
            )

    def _dead_letter(
        self,
        conn: sqlite3.Connection,
        queue: str,
        job_id: str,
        payload: Any,
        attempts: int,
        outcome: DeadLetter,
        dead_letter_queue: str | None,
        now: int,
        where: str,
        guard: tuple[Any, ...],
    ) -> None:
        state = "dead_lettered" if dead_letter_queue else "failed"
        cursor = conn.execute(
            "UPDATE jobs SET state = ?, error = ?, finished_at = ?, lease_until = NULL,"
            " worker = NULL" + where,
            (state, _dumps(outcome.error.as_dict()), now, *guard),
        )
        if cursor.rowcount == 0 or not dead_letter_queue:
            return
        record = DeadLetterRecord(
            id=uuid.uuid4().hex,
            queue=queue,
            job_id=job_id,
            payload=payload,
            attempts=attempts,
            reason=outcome.reason,
            error=outcome.error,
            failed_at_ms=now,
        )
        conn.execute(
            "INSERT INTO jobs (queue, id, state, run_at, payload, enqueued_at)"
            " VALUES (?, ?, 'waiting', ?, ?, ?)",
            (dead_letter_queue, record.id, now, _dumps(record.as_payload()), now),
        )

    async def extend_lease(self, queue: str, job_ids: Sequence[str], lease_ms: int) -> None:
        now = self._now()
        rows = [
            (now + lease_ms, queue, job_id, self._tokens[(queue, job_id)])
            for job_id in job_ids
            if (queue, job_id) in self._tokens
        ]
        if not rows:
            return

        def tx(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "UPDATE jobs SET lease_until = ? WHERE queue = ? AND id = ? AND token = ?"
                " AND state = 'active'",
                rows,
            )

        await self._write(tx)

    async def release(self, queue: str, job_ids: Sequence[str]) -> None:
        rows = [
            (queue, job_id, self._tokens.pop((queue, job_id)))
            for job_id in job_ids
            if (queue, job_id) in self._tokens
        ]
        if not rows:
            return

        def tx(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "UPDATE jobs SET state = 'waiting', attempts = max(attempts - 1, 0),"
                " lease_until = NULL, worker = NULL"
                " WHERE queue = ? AND id = ? AND token = ? AND state = 'active'",
                rows,
            )

        await self._write(tx)

    async def recover_stalled(
        self, queue: str, max_stalled_count: int, dead_letter_queue: str | None = None
    ) -> list[str]:
        now = self._now()
        self._dead_letter_queues[queue] = dead_letter_queue

        def tx(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(
                "SELECT id, payload, attempts, stalls, token FROM jobs"
                " WHERE queue = ? AND state = 'active' AND lease_until < ?",
                (queue, now),
            ).fetchall()
            for job_id, payload, attempts, stalls, token in rows:
                guard = (queue, job_id, token)
                where = " WHERE queue = ? AND id = ? AND token = ? AND state = 'active'"
                if stalls + 1 > max_stalled_count:
                    error = ErrorInfo(
                        type="StalledJobError",
                        message=(
                            f"the job's lease expired {stalls + 1} time(s) (its worker died or"
                            f" blocked); max_stalled_count is {max_stalled_count}"
                        ),
                    )
                    self._dead_letter(
                        conn,
                        queue,
                        job_id,
                        _loads_or_text(payload),
                        attempts,
                        DeadLetter("stalled", error),
                        dead_letter_queue,
                        now,
                        where,
                        guard,
                    )
                else:
                    # The lost attempt does not count: the job never got a verdict.
                    conn.execute(
                        "UPDATE jobs SET state = 'waiting', stalls = stalls + 1,"
                        " attempts = max(attempts - 1, 0), lease_until = NULL, worker = NULL"
                        + where,
                        guard,
                    )
            return [str(r[0]) for r in rows]

        return await self._write(tx)

    async def active_count(self, queue: str) -> int:
        def read(conn: sqlite3.Connection) -> int:
            return int(
                conn.execute(
                    "SELECT count(*) FROM jobs WHERE queue = ? AND state = 'active'", (queue,)
                ).fetchone()[0]
            )

        return await self._read(read)

    async def pending_count(self, queue: str) -> int:
        """Jobs a burst worker must still wait for: waiting, active, and delayed ones that are
        not the next run of a repeat schedule (those would keep a burst worker alive forever)."""

        def read(conn: sqlite3.Connection) -> int:
            return int(
                conn.execute(
                    "SELECT (SELECT count(*) FROM jobs WHERE queue = ?1 AND state IN"
                    " ('waiting', 'active')) + (SELECT count(*) FROM jobs WHERE queue = ?1"
                    " AND state = 'delayed' AND schedule IS NULL)",
                    (queue,),
                ).fetchone()[0]
            )

        return await self._read(read)

    async def next_due_ms(self, queues: Iterable[str]) -> int | None:
        """The earliest time a delayed job of these queues becomes due (None: none delayed)."""
        names = list(queues)

        def read(conn: sqlite3.Connection) -> int | None:
            times = [
                conn.execute(
                    "SELECT min(run_at) FROM jobs WHERE queue = ? AND state = 'delayed'", (q,)
                ).fetchone()[0]
                for q in names
            ]
            due = [int(t) for t in times if t is not None]
            return min(due) if due else None

        return await self._read(read)


def _as_record(record_id: str, text: str) -> DeadLetterRecord | None:
    """A dead-letter record, or None for anything else found in that queue (a job enqueued
    there by hand): listing and replay skip it instead of failing on it."""
    data = _loads_or_text(text)
    if not isinstance(data, dict) or "queue" not in data or "job_id" not in data:
        return None
    return DeadLetterRecord.from_payload(record_id, data)


def _loads_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text


def _resolve(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def path_from_url(url: str) -> str:
    """`sqlite:///rel/path.db` → `rel/path.db`; `sqlite:////abs/path.db` → `/abs/path.db`."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite":
        raise BackendError(f"not a sqlite:// URL: {url!r}")
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if parts.netloc:
        path = parts.netloc + "/" + path
    if not path:
        raise BackendError(f"{url!r} names no file; use sqlite:///path/to/queue.db")
    return path


def from_url(url: str) -> SqliteBackend:
    return SqliteBackend(path_from_url(url), url=url)
