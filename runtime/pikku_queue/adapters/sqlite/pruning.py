"""Removing old finished jobs (`pikku_queue.retention`), and figures that read no row per job.

Why batched: a DELETE per completion would double the statements of the hot path. The
backend counts the verdicts it settles and prunes a queue every `PRUNE_EVERY` of them; each
prune finds the cutoff through the `jobs_finished` index (`finished_at` of the N-th newest
kept job) and deletes below it in chunks of `DELETE_CHUNK` rows, each its own short
transaction, so a first prune of a large old file never holds the write lock for long. SQLite
reuses the freed pages, so the file stops growing once the kept window is reached.

Why a summary: `finished_since` returns a row per job; over a busy window that is every job
of the last minutes in a worker's memory. `finished_summary` returns, per outcome, the count
and the first finish in the window (SQL aggregates over the index) and the latencies of at
most `LATENCY_SAMPLE` most recent jobs.
"""

from __future__ import annotations

import sqlite3

from pikku_queue.records import FinishedBucket, FinishedSummary
from pikku_queue.retention import KeepJobs, keep_limits

#: Verdicts settled on a queue between two prunes of it.
PRUNE_EVERY = 5_000
#: Rows one prune transaction deletes at most.
DELETE_CHUNK = 5_000
#: The most recent finished jobs whose latencies give the percentiles of a summary.
LATENCY_SAMPLE = 2_000
#: The most recent finished jobs of one chart bucket whose latencies give its percentiles.
BUCKET_LATENCY_SAMPLE = 200

COMPLETED = ("completed",)
FAILED = ("failed", "dead_lettered")


def _states(states: tuple[str, ...]) -> str:
    return ", ".join(f"'{s}'" for s in states)


def prune_cutoff(
    conn: sqlite3.Connection, queue: str, states: tuple[str, ...], keep: KeepJobs, now: int
) -> tuple[int, int] | None:
    """(finished_at, seq) at or below which (in that order) finished jobs of `states` go;
    None: none go. `seq` breaks ties, so exactly N are kept: a group commit finishes many jobs
    in the same millisecond."""
    count, age_ms = keep_limits(keep)
    cutoffs: list[tuple[int, int]] = []
    if age_ms is not None:
        cutoffs.append((now - age_ms - 1, 2**62))
    if count == 0:  # `true`: every finished job goes
        cutoffs.append((now + 1, 2**62))
    elif count is not None:
        row = conn.execute(
            "SELECT finished_at, seq FROM jobs WHERE queue = ? AND finished_at IS NOT NULL"
            f" AND state IN ({_states(states)}) ORDER BY finished_at DESC, seq DESC"
            " LIMIT 1 OFFSET ?",
            (queue, count),
        ).fetchone()
        if row is not None:
            cutoffs.append((int(row[0]), int(row[1])))
    return max(cutoffs) if cutoffs else None


def delete_chunk(
    conn: sqlite3.Connection, queue: str, states: tuple[str, ...], cutoff: tuple[int, int]
) -> int:
    """Delete up to `DELETE_CHUNK` finished jobs of `states` at or below `cutoff`."""
    finished_at, seq = cutoff
    cursor = conn.execute(
        "DELETE FROM jobs WHERE seq IN (SELECT seq FROM jobs WHERE queue = ?"
        f" AND finished_at IS NOT NULL AND state IN ({_states(states)})"
        " AND (finished_at < ? OR (finished_at = ? AND seq <= ?)) LIMIT ?)",
        (queue, finished_at, finished_at, seq, DELETE_CHUNK),
    )
    return int(cursor.rowcount)


def finished_summary(conn: sqlite3.Connection, queue: str, since_ms: int) -> FinishedSummary:
    by_state = {
        str(state): (int(count), int(first))
        for state, count, first in conn.execute(
            # INDEXED BY: to skip sorting for the GROUP BY, the planner would rather walk the
            # queue's whole `jobs_by_state` run (every job) than the window's index range.
            "SELECT state, count(*), min(finished_at) FROM jobs INDEXED BY jobs_finished"
            " WHERE queue = ? AND finished_at IS NOT NULL AND finished_at >= ? GROUP BY state",
            (queue, since_ms),
        ).fetchall()
    }
    latencies = [
        float(latency)
        for (latency,) in conn.execute(
            "SELECT finished_at - enqueued_at FROM jobs WHERE queue = ?"
            " AND finished_at IS NOT NULL AND finished_at >= ? ORDER BY finished_at DESC"
            " LIMIT ?",
            (queue, since_ms, LATENCY_SAMPLE),
        ).fetchall()
    ]
    succeeded = [by_state[s] for s in COMPLETED if s in by_state]
    failed = [by_state[s] for s in FAILED if s in by_state]
    return FinishedSummary(
        succeeded=sum(c for c, _ in succeeded),
        failed=sum(c for c, _ in failed),
        first_succeeded_ms=min((f for _, f in succeeded), default=None),
        first_failed_ms=min((f for _, f in failed), default=None),
        latencies_ms=latencies,
    )


def finished_buckets(
    conn: sqlite3.Connection,
    queue: str,
    since_ms: int,
    bucket_ms: int,
    sample: int = BUCKET_LATENCY_SAMPLE,
) -> list[FinishedBucket]:
    """The web monitor's chart: per bucket of `bucket_ms`, the finished and failed counts (SQL
    aggregates) and the latencies of at most `sample` of its most recent jobs, so a scrape
    returns buckets x `sample` rows at most, however many jobs finished."""
    window = "FROM jobs WHERE queue = ? AND finished_at IS NOT NULL AND finished_at >= ?"
    totals = conn.execute(
        f"SELECT finished_at - finished_at % ? AS b, count(*), sum(state IN ({_states(FAILED)}))"
        f" {window} GROUP BY b ORDER BY b",
        (bucket_ms, queue, since_ms),
    ).fetchall()
    latencies: dict[int, list[float]] = {}
    for start, latency in conn.execute(
        "SELECT b, latency FROM (SELECT finished_at - finished_at % ? AS b,"
        " finished_at - enqueued_at AS latency, row_number() OVER (PARTITION BY"
        f" finished_at - finished_at % ? ORDER BY finished_at DESC) AS r {window})"
        " WHERE r <= ?",
        (bucket_ms, bucket_ms, queue, since_ms, sample),
    ).fetchall():
        latencies.setdefault(int(start), []).append(float(latency))
    return [
        FinishedBucket(int(start), int(count), int(failed or 0), latencies.get(int(start), []))
        for start, count, failed in totals
    ]
