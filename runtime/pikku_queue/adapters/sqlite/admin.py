"""What the web monitor shows and does on the SQLite (and memory) backend: jobs by state a page
at a time, and retry, remove, promote, pause/resume and clean (the optional protocols at the
end of `pikku_queue.backend`).

Why it stays fast with a million rows: every page is read from the `jobs_by_state` index
(`queue, state, seq`) from a position, newest first, so page 1,000 costs what page 1 does
(the cursor is the last row's `seq`, never an OFFSET); a delayed job already due counts as
waiting, as everywhere (`counts`), so the waiting page merges the waiting run of that index
with the due delayed jobs: from the due range of `jobs_delayed` (their `seq`s from the index,
no row read to learn it is not due yet) when few delayed jobs are due, else from the delayed
run of `jobs_by_state` (most rows it reads are due): a page reads about as many rows as the
smaller of the two groups at worst, beside counting the due entries (as `counts` does).
Cleaning deletes in chunks of `CLEAN_CHUNK` rows, each its own short transaction, so a worker
is never locked out of the file for long.

A pause is a row of `paused_queues`: `SqliteBackend.reserve` leases nothing from a paused
queue, in every process sharing the file, and `pending_count` reports it drained, so a
`--burst` worker leaves instead of waiting for a resume (as on Redis).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from pikku_queue.adapters.sqlite.codec import job_info
from pikku_queue.adapters.sqlite.counters import due_count, snapshot, stored_count
from pikku_queue.adapters.sqlite.schema import JOB_COLUMNS
from pikku_queue.adapters.sqlite.thread import ConnectionThread
from pikku_queue.errors import BackendError
from pikku_queue.records import CLEANABLE_STATES, JobInfo, JobPage, JobState

#: Rows one clean transaction deletes at most.
CLEAN_CHUNK = 5_000
#: The states a clean of each cleanable state removes (`records.CLEANABLE_STATES`).
_CLEANED = {
    JobState.COMPLETED: ("completed",),
    JobState.FAILED: ("failed", "dead_lettered", "cancelled"),
}
_PAGE = (
    f"SELECT seq, {JOB_COLUMNS} FROM jobs INDEXED BY jobs_by_state WHERE queue = ? AND state = ?"
)


def queue_paused(conn: sqlite3.Connection, queue: str) -> bool:
    """Whether `queue` is paused (one primary-key lookup: `reserve` asks before each lease)."""
    return (
        conn.execute("SELECT 1 FROM paused_queues WHERE queue = ?", (queue,)).fetchone() is not None
    )


def _cursor(cursor: str | None) -> int:
    if cursor is None:
        return 2**63 - 1
    try:
        return int(cursor)
    except ValueError:
        raise ValueError(f"{cursor!r} is not a cursor of this backend's job lists") from None


def _rows(
    conn: sqlite3.Connection, queue: str, state: str, before: int, limit: int, due: str = ""
) -> list[tuple[Any, ...]]:
    sql = f"{_PAGE} AND seq < ?{due} ORDER BY seq DESC LIMIT ?"
    return list(conn.execute(sql, (queue, state, before, limit)).fetchall())


def _mostly_due(conn: sqlite3.Connection, queue: str, now: int) -> bool:
    """Whether most of the queue's delayed jobs are due (a backlog of retries no worker takes):
    then walking the delayed run of `jobs_by_state` finds a page of due ones after reading
    about as many rows, where `_due_rows` would sort every due entry. The due ones are counted
    from `jobs_delayed`, as `Backend.counts` counts them; all delayed from `job_counts`."""
    due = due_count(conn, queue, now)
    return due > stored_count(conn, queue, "delayed") - due


def _due_rows(
    conn: sqlite3.Connection, queue: str, before: int, limit: int, now: int
) -> list[tuple[Any, ...]]:
    """The delayed jobs already due, newest first: their `seq`s from the `jobs_delayed` index
    alone (the row id is in every entry), then those rows. Walking the delayed run of
    `jobs_by_state` instead would read every delayed job not yet due to check its time."""
    seqs = [
        seq
        for (seq,) in conn.execute(
            "SELECT seq FROM jobs INDEXED BY jobs_delayed WHERE queue = ? AND state = 'delayed'"
            " AND run_at <= ? AND seq < ? ORDER BY seq DESC LIMIT ?",
            (queue, now, before, limit),
        )
    ]
    if not seqs:
        return []
    marks = ", ".join("?" * len(seqs))
    sql = f"SELECT seq, {JOB_COLUMNS} FROM jobs WHERE seq IN ({marks}) AND state = 'delayed'"
    return list(conn.execute(sql, seqs).fetchall())


def list_page(
    conn: sqlite3.Connection, queue: str, state: JobState, limit: int, cursor: str | None, now: int
) -> JobPage:
    """A page of `queue`'s jobs in `state`, newest first (by enqueue), starting below `cursor`."""
    before = _cursor(cursor)
    limit = max(int(limit), 1)
    take = limit + 1  # one more than shown: whether a next page exists
    if state is JobState.WAITING:
        rows = _rows(conn, queue, "waiting", before, take)
        if _mostly_due(conn, queue, now):  # few rows read per due job found on the walk
            rows += _rows(conn, queue, "delayed", before, take, f" AND run_at <= {int(now)}")
        else:
            rows += _due_rows(conn, queue, before, take, now)
        rows.sort(key=lambda row: row[0], reverse=True)
    elif state is JobState.DELAYED:
        rows = _rows(conn, queue, "delayed", before, take, f" AND run_at > {int(now)}")
    else:
        rows = _rows(conn, queue, str(state), before, take)
    shown = rows[:limit]
    jobs: list[JobInfo] = [job_info(row[1:], now) for row in shown]
    more = len(rows) > limit
    return JobPage(jobs=jobs, next_cursor=str(shown[-1][0]) if more else None)


def retry_failed(conn: sqlite3.Connection, queue: str, job_id: str, now: int) -> bool:
    """A failed job back to waiting, attempts reset, its id kept (`RetriesJobs`)."""
    cursor = conn.execute(
        "UPDATE jobs SET state = 'waiting', attempts = 0, stalls = 0, error = NULL,"
        " result = NULL, progress = NULL, finished_at = NULL, lease_until = NULL,"
        " worker = NULL, run_at = ?, enqueued_at = ?, cancel_requested = NULL"
        " WHERE queue = ? AND id = ? AND state = 'failed'",
        (now, now, queue, job_id),
    )
    return cursor.rowcount > 0


def remove(conn: sqlite3.Connection, queue: str, job_id: str) -> bool:
    """Delete a job unless it is active or a schedule's pending next run (`RemovesJobs`); a
    deduplication key it holds goes with it, as BullMQ's removeJob drops its `de:` key."""
    cursor = conn.execute(
        "DELETE FROM jobs WHERE queue = ? AND id = ? AND state != 'active'"
        " AND NOT (state = 'delayed' AND schedule IS NOT NULL)",
        (queue, job_id),
    )
    if cursor.rowcount <= 0:
        return False
    conn.execute("DELETE FROM dedupe_keys WHERE queue = ? AND job_id = ?", (queue, job_id))
    return True


def promote(conn: sqlite3.Connection, queue: str, job_id: str, now: int) -> bool:
    """A delayed job due now (`PromotesJobs`); the lease query takes due delayed jobs first."""
    cursor = conn.execute(
        "UPDATE jobs SET state = 'waiting', run_at = ? WHERE queue = ? AND id = ?"
        " AND state = 'delayed' AND run_at > ?",
        (now, queue, job_id, now),
    )
    return cursor.rowcount > 0


def set_paused(conn: sqlite3.Connection, queue: str, paused: bool, now: int) -> None:
    if paused:
        conn.execute(
            "INSERT INTO paused_queues (queue, paused_at) VALUES (?, ?)"
            " ON CONFLICT (queue) DO NOTHING",
            (queue, now),
        )
    else:
        conn.execute("DELETE FROM paused_queues WHERE queue = ?", (queue,))


def clean_chunk(conn: sqlite3.Connection, queue: str, state: JobState, finished_before: int) -> int:
    """Delete at most `CLEAN_CHUNK` jobs of `state` finished before `finished_before`."""
    states = ", ".join(f"'{s}'" for s in _CLEANED[state])
    cursor = conn.execute(
        "DELETE FROM jobs WHERE seq IN (SELECT seq FROM jobs WHERE queue = ?"
        f" AND state IN ({states}) AND finished_at < ? LIMIT ?)",
        (queue, finished_before, CLEAN_CHUNK),
    )
    return cursor.rowcount


class SqliteAdmin:
    """The monitor's protocols (`ListsJobs`, `RetriesJobs`, `RemovesJobs`, `PromotesJobs`,
    `PausesQueues`, `CleansJobs`), mixed into `SqliteBackend`; each is one statement group on
    the backend's connection thread."""

    _db: ConnectionThread

    def _now(self) -> int:
        raise NotImplementedError

    async def list_jobs(
        self, queue: str, state: JobState, limit: int, cursor: str | None = None
    ) -> JobPage:
        now = self._now()

        def read(conn: sqlite3.Connection) -> JobPage:
            with snapshot(conn):  # the waiting page's runs and counts at one moment
                return list_page(conn, queue, state, limit, cursor, now)

        return await self._db.read(read)

    async def retry_job(self, queue: str, job_id: str) -> bool:
        now = self._now()
        return await self._db.write(lambda conn: retry_failed(conn, queue, job_id, now))

    async def remove_job(self, queue: str, job_id: str) -> bool:
        return await self._db.write(lambda conn: remove(conn, queue, job_id))

    async def promote_job(self, queue: str, job_id: str) -> bool:
        now = self._now()
        return await self._db.write(lambda conn: promote(conn, queue, job_id, now))

    async def pause_queue(self, queue: str) -> None:
        now = self._now()
        await self._db.write(lambda conn: set_paused(conn, queue, True, now))

    async def resume_queue(self, queue: str) -> None:
        now = self._now()
        await self._db.write(lambda conn: set_paused(conn, queue, False, now))

    async def is_paused(self, queue: str) -> bool:
        return await self._db.read(lambda conn: queue_paused(conn, queue))

    async def clean_jobs(self, queue: str, state: JobState, grace_ms: int = 0) -> int:
        if state not in CLEANABLE_STATES:
            raise BackendError(f"only completed or failed jobs are cleaned, not {state}")
        before = self._now() - max(int(grace_ms), 0) + 1
        removed = 0
        while True:
            deleted = await self._db.write(lambda conn: clean_chunk(conn, queue, state, before))
            removed += deleted
            if deleted < CLEAN_CHUNK:
                return removed
