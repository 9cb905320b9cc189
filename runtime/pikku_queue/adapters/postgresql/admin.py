"""What the web monitor shows and does on `postgresql://`: jobs by state a page at a time, and
retry, remove, promote, pause/resume and clean (the optional protocols at the end of
`pikku_queue.backend`), as on SQLite (`sqlite.admin`).

Why the pages read no more rows than they show, without an index of their own (each index is
one more write per enqueue, the bulk path this backend is measured on):

* waiting and delayed jobs are read from the ready index (`name, priority, seq`): one
  backwards range per priority present (a recursive query finds them, one index probe each),
  merged newest first; a queue uses a handful of priorities, so a page costs a few probes
  whatever the backlog. A cursor is the last row's `seq`.
* active jobs are few (at most the workers' slots): the active index, sorted.
* finished jobs are read from the finished index (`name, completed_on, seq`), newest finish
  first; a cursor is the last row's finish time (PostgreSQL's text of it: exact) and `seq`.

A pause is a row of `paused`: the lease statement leases nothing from a paused queue (one
primary-key probe inside it), in every process sharing the database, and `pending_count`
reports it drained, so a `--burst` worker leaves instead of waiting for a resume. A resume,
a retry and a promote notify the queue, so idle workers take the job within milliseconds.
Cleaning deletes `CLEAN_CHUNK` rows per statement.
"""

from __future__ import annotations

from typing import Any

import psycopg

from pikku_queue.adapters.postgresql.connections import Tx
from pikku_queue.adapters.postgresql.jobs import READY, Statements
from pikku_queue.adapters.sqlite.codec import job_info
from pikku_queue.errors import BackendError
from pikku_queue.records import CLEANABLE_STATES, JobInfo, JobPage, JobState

#: Rows one clean statement deletes at most.
CLEAN_CHUNK = 5_000
#: The largest `seq`: the cursor of a first page.
_LAST = 2**63 - 1
#: The SQL condition of each finished state (their rows are in the finished index).
_FINISHED = {
    JobState.COMPLETED: "state = 'completed'",
    JobState.FAILED: "state = 'failed' AND dead_letter IS NULL",
    JobState.DEAD_LETTERED: "state = 'failed' AND dead_letter IS NOT NULL",
}
#: What a clean of each cleanable state removes: "failed" includes dead-lettered jobs.
_CLEANED = {JobState.COMPLETED: "state = 'completed'", JobState.FAILED: "state = 'failed'"}


def job_columns(s: str) -> str:
    """The columns `job_info_of` reads, in its order."""
    return (
        f"id, name, state, data, retry_count, progress, output, error, {s}.ms(created_on),"
        f" {s}.ms(completed_on), {s}.ms(start_after), dead_letter IS NOT NULL,"
        f" {s}.ms(clock_timestamp())"
    )


def job_info_of(row: tuple[Any, ...]) -> JobInfo:
    """A row of `job_columns` in the SQLite reader's terms (`sqlite.codec.job_info`)."""
    id_, queue, state, data, attempts, progress, output, error = row[:8]
    created, completed, start_after, dead, now = row[8:13]
    ours = {
        "created": "delayed",
        "retry": "delayed",
        "active": "active",
        "completed": "completed",
        "failed": "dead_lettered" if dead else "failed",
    }[state]
    return job_info(
        (id_, queue, ours, data, attempts, progress, output, error, created, completed,
         start_after),
        now,
    )  # fmt: skip


def _seq_cursor(cursor: str | None) -> int:
    if cursor is None:
        return _LAST
    try:
        seq = int(cursor)
        if not 0 <= seq <= _LAST:
            raise ValueError
        return seq
    except ValueError:
        raise ValueError(f"{cursor!r} is not a cursor of this backend's job lists") from None


def _finish_cursor(cursor: str | None) -> tuple[str, int]:
    """(finish time as PostgreSQL's own text of it, seq): exact, whatever the time."""
    if cursor is None:
        return "infinity", _LAST
    at, sep, seq = cursor.rpartition("|")
    try:
        if not sep or not at:
            raise ValueError
        return at, _seq_cursor(seq)
    except ValueError:
        raise ValueError(f"{cursor!r} is not a cursor of this backend's job lists") from None


async def list_page(
    tx: Tx, st: Statements, queue: str, state: JobState, limit: int, cursor: str | None
) -> JobPage:
    """A page of `queue`'s jobs in `state`, newest first, starting below `cursor`."""
    s = st.schema
    limit = max(int(limit), 1)
    take = limit + 1  # one more than shown: whether a next page exists
    cols = job_columns(s)
    if state in _FINISHED:
        at, seq = _finish_cursor(cursor)
        try:
            rows = await _finished_rows(tx, s, queue, state, at, seq, take)
        except psycopg.DataError:  # a time PostgreSQL cannot read: no cursor of ours
            raise ValueError(f"{cursor!r} is not a cursor of this backend's job lists") from None
        shown = rows[:limit]
        more = len(rows) > limit
        last = f"{shown[-1][0]}|{shown[-1][1]}" if more else None
        return JobPage(jobs=[job_info_of(row[2:]) for row in shown], next_cursor=last)
    before = _seq_cursor(cursor)
    if state is JobState.ACTIVE:
        rows = await tx.rows(
            f"SELECT seq, {cols} FROM {s}.job WHERE name = %s AND state = 'active'"
            " AND seq < %s ORDER BY seq DESC LIMIT %s",
            (queue, before, take),
        )
    elif state in (JobState.WAITING, JobState.DELAYED):
        due = "<=" if state is JobState.WAITING else ">"
        rows = await tx.rows(
            "WITH RECURSIVE p(priority) AS ("
            f" (SELECT priority FROM {s}.job WHERE name = %(q)s AND state IN {READY}"
            " ORDER BY priority LIMIT 1)"
            " UNION ALL"
            f" SELECT (SELECT j.priority FROM {s}.job j WHERE j.name = %(q)s"
            f" AND j.state IN {READY} AND j.priority > p.priority ORDER BY j.priority LIMIT 1)"
            " FROM p WHERE p.priority IS NOT NULL)"
            " SELECT page.* FROM p CROSS JOIN LATERAL"
            f" (SELECT seq, {cols} FROM {s}.job WHERE name = %(q)s AND state IN {READY}"
            " AND priority = p.priority AND seq < %(before)s"
            f" AND start_after {due} statement_timestamp()"
            " ORDER BY seq DESC LIMIT %(take)s) AS page"
            " WHERE p.priority IS NOT NULL ORDER BY page.seq DESC LIMIT %(take)s",
            {"q": queue, "before": before, "take": take},
        )
    else:
        raise ValueError(f"no job list for state {state}")
    shown = rows[:limit]
    more = len(rows) > limit
    return JobPage(
        jobs=[job_info_of(row[1:]) for row in shown],
        next_cursor=str(shown[-1][0]) if more else None,
    )


async def _finished_rows(
    tx: Tx, s: str, queue: str, state: JobState, at: str, seq: int, take: int
) -> list[tuple[Any, ...]]:
    return await tx.rows(
        f"SELECT completed_on::text, seq, {job_columns(s)}"
        f" FROM {s}.job WHERE name = %s AND completed_on IS NOT NULL AND {_FINISHED[state]}"
        " AND (completed_on, seq) < (%s::timestamptz, %s)"
        " ORDER BY completed_on DESC, seq DESC LIMIT %s",
        (queue, at, seq, take),
    )


async def retry_failed(tx: Tx, st: Statements, queue: str, job_id: str) -> bool:
    """A job failed for good (no dead-letter queue took it) back to waiting, attempts reset,
    its id kept (`RetriesJobs`)."""
    touched = await tx.run(
        f"UPDATE {st.schema}.job SET state = 'created', retry_count = 0, stalled_count = 0,"
        " error = NULL, output = NULL, progress = NULL, completed_on = NULL,"
        " lease_until = NULL, worker = NULL, start_after = clock_timestamp(),"
        " created_on = clock_timestamp()"
        " WHERE name = %s AND id = %s AND state = 'failed' AND dead_letter IS NULL",
        (queue, job_id),
    )
    if touched:
        await tx.rows(st.notify, (st.channel, queue))
    return touched > 0


async def remove(tx: Tx, st: Statements, queue: str, job_id: str) -> bool:
    """Delete a job unless it is active or a schedule's pending run (`RemovesJobs`)."""
    touched = await tx.run(
        f"DELETE FROM {st.schema}.job WHERE name = %s AND id = %s AND state != 'active'"
        f" AND NOT (state IN {READY} AND schedule_key IS NOT NULL)",
        (queue, job_id),
    )
    return touched > 0


async def promote(tx: Tx, st: Statements, queue: str, job_id: str) -> bool:
    """A delayed job due now (`PromotesJobs`)."""
    touched = await tx.run(
        f"UPDATE {st.schema}.job SET start_after = clock_timestamp()"
        f" WHERE name = %s AND id = %s AND state IN {READY} AND start_after > clock_timestamp()",
        (queue, job_id),
    )
    if touched:
        await tx.rows(st.notify, (st.channel, queue))
    return touched > 0


async def set_paused(tx: Tx, st: Statements, queue: str, paused: bool) -> None:
    if paused:
        await tx.run(
            f"INSERT INTO {st.schema}.paused (name) VALUES (%s) ON CONFLICT (name) DO NOTHING",
            (queue,),
        )
    else:
        await tx.run(f"DELETE FROM {st.schema}.paused WHERE name = %s", (queue,))
        await tx.rows(st.notify, (st.channel, queue))


async def queue_paused(tx: Tx, st: Statements, queue: str) -> bool:
    rows = await tx.rows(f"SELECT 1 FROM {st.schema}.paused WHERE name = %s", (queue,))
    return bool(rows)


async def clean_chunk(tx: Tx, st: Statements, queue: str, state: JobState, grace_ms: int) -> int:
    """Delete at most `CLEAN_CHUNK` jobs of `state` finished at least `grace_ms` ago."""
    s = st.schema
    return await tx.run(
        f"DELETE FROM {s}.job WHERE (name, id) IN (SELECT name, id FROM {s}.job WHERE name = %s"
        f" AND completed_on IS NOT NULL AND {_CLEANED[state]}"
        " AND completed_on <= clock_timestamp() - %s * interval '1 millisecond' LIMIT %s)",
        (queue, grace_ms, CLEAN_CHUNK),
    )


def check_cleanable(state: JobState) -> None:
    if state not in CLEANABLE_STATES:
        raise BackendError(f"only completed or failed jobs are cleaned, not {state}")
