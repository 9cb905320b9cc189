"""Cancelling jobs (`CancelsJobs`, `CancelRequests`), as statements on the jobs table.

A waiting or delayed job is deleted. A running one keeps running until its worker sees the
request: `cancel_requested` on the job's own row holds the lease token of the attempt that was
running when it was asked (so the request dies with the row, and a later job that reuses the
id starts clean). The worker holding the lease polls for it; every way the lease ends then
honours it in the same write transaction (`leases`): a failed attempt, a released or an
expired lease ends the job `cancelled` instead of retrying or dead-lettering it. Only a
completed attempt stays completed (it finished before the stop could reach it).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from pikku_queue.adapters.sqlite.codec import dumps
from pikku_queue.outcomes import cancelled_error
from pikku_queue.records import CancelResult

#: Ends a flagged job `cancelled`: parameters error, finished_at, queue, id, token.
END_CANCELLED = (
    "UPDATE jobs SET state = 'cancelled', error = ?, finished_at = ?, lease_until = NULL,"
    " worker = NULL WHERE queue = ? AND id = ? AND token = ? AND state = 'active'"
)
_FINAL = ("completed", "failed", "dead_lettered", "cancelled")


def cancel(conn: sqlite3.Connection, queue: str, job_id: str) -> CancelResult:
    """Remove a waiting or delayed job, or flag a running one (`CancelsJobs.cancel_job`)."""
    row = conn.execute(
        "SELECT state, schedule, token FROM jobs WHERE queue = ? AND id = ?", (queue, job_id)
    ).fetchone()
    if row is None:
        return CancelResult.NOT_FOUND
    state, schedule, token = row
    if state == "active":
        conn.execute(
            "UPDATE jobs SET cancel_requested = ? WHERE queue = ? AND id = ? AND state = 'active'",
            (token, queue, job_id),
        )
        return CancelResult.REQUESTED
    if state in _FINAL:
        return CancelResult.FINISHED
    if schedule is not None:  # a schedule's pending run: its lease adds the next one
        return CancelResult.SCHEDULED
    # waiting, delayed, or a state no worker serves (the lease would dead-letter it)
    conn.execute("DELETE FROM jobs WHERE queue = ? AND id = ?", (queue, job_id))
    return CancelResult.REMOVED


def requested(conn: sqlite3.Connection, queue: str, job_ids: Sequence[str]) -> set[str]:
    """Which of the active `job_ids` carry a cancel request (`CancelRequests`)."""
    found: set[str] = set()
    for start in range(0, len(job_ids), 500):  # below SQLite's bound-parameter limit
        chunk = list(job_ids[start : start + 500])
        marks = ", ".join("?" * len(chunk))
        rows = conn.execute(
            f"SELECT id FROM jobs WHERE queue = ? AND id IN ({marks}) AND state = 'active'"
            " AND cancel_requested IS NOT NULL",
            (queue, *chunk),
        ).fetchall()
        found.update(str(row[0]) for row in rows)
    return found


def is_requested(conn: sqlite3.Connection, guard: tuple[str, str, int]) -> bool:
    """Whether the job the lease `guard` (queue, id, token) holds was asked to stop."""
    row = conn.execute(
        "SELECT 1 FROM jobs WHERE queue = ? AND id = ? AND token = ? AND state = 'active'"
        " AND cancel_requested IS NOT NULL",
        guard,
    ).fetchone()
    return row is not None


def end_cancelled(
    conn: sqlite3.Connection, guard: tuple[str, str, int], attempt: int, now: int
) -> bool:
    """End the job the lease `guard` holds as `cancelled`; False when the lease is lost."""
    error = dumps(cancelled_error(attempt).as_dict())
    return conn.execute(END_CANCELLED, (error, now, *guard)).rowcount > 0
