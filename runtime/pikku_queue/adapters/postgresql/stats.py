"""Counts, finished-job figures and retention, in SQL aggregates (as on SQLite): the monitor
never reads a row per finished job, and pruning deletes in short chunks.

Why retention is batched: a DELETE per completion would double the statements of the hot
path. The backend counts the verdicts it settles and prunes a queue every `PRUNE_EVERY` of
them, below the cutoff of the N-th newest kept job, `DELETE_CHUNK` rows per statement.
"""

from __future__ import annotations

from pikku_queue.adapters.postgresql.connections import Tx
from pikku_queue.adapters.postgresql.jobs import READY, Statements
from pikku_queue.adapters.sqlite.pruning import (
    BUCKET_LATENCY_SAMPLE,
    DELETE_CHUNK,
    LATENCY_SAMPLE,
    PRUNE_EVERY,
)
from pikku_queue.records import FinishedBucket, FinishedJob, FinishedSummary, QueueCounts
from pikku_queue.retention import KeepJobs, keep_limits

__all__ = [
    "BUCKET_LATENCY_SAMPLE",
    "DELETE_CHUNK",
    "PRUNE_EVERY",
    "counts",
    "delete_chunk",
    "finished_buckets",
    "finished_since",
    "finished_summary",
    "prune_cutoff",
]

#: SQL conditions of a finished job that succeeded / failed for good.
SUCCEEDED = "state = 'completed'"
FAILED = "state = 'failed'"


async def counts(tx: Tx, st: Statements, queue: str) -> QueueCounts:
    [row] = await tx.rows(
        "SELECT"
        f" count(*) FILTER (WHERE state IN {READY} AND start_after <= clock_timestamp()),"
        " count(*) FILTER (WHERE state = 'active'),"
        f" count(*) FILTER (WHERE state IN {READY} AND start_after > clock_timestamp()),"
        " count(*) FILTER (WHERE state = 'completed'),"
        " count(*) FILTER (WHERE state = 'failed' AND dead_letter IS NULL),"
        " count(*) FILTER (WHERE state = 'failed' AND dead_letter IS NOT NULL),"
        " count(*) FILTER (WHERE state = 'cancelled'),"
        f" count(*) FILTER (WHERE state IN {READY} AND start_after > clock_timestamp()"
        " AND schedule_key IS NOT NULL)"
        f" FROM {st.schema}.job WHERE name = %s",
        (queue,),
    )
    waiting, active, delayed, completed, failed, dead, cancelled, scheduled = (int(n) for n in row)
    return QueueCounts(
        waiting=waiting,
        active=active,
        delayed=delayed,
        completed=completed,
        failed=failed,
        dead_lettered=dead,
        cancelled=cancelled,
        scheduled=scheduled,
    )


def _window(st: Statements) -> str:
    return (
        f"FROM {st.schema}.job WHERE name = %s AND completed_on IS NOT NULL"
        f" AND completed_on >= {st.schema}.at_ms(%s)"
    )


async def finished_since(tx: Tx, st: Statements, queue: str, since_ms: int) -> list[FinishedJob]:
    s = st.schema
    rows = await tx.rows(
        f"SELECT {s}.ms(created_on), {s}.ms(completed_on), {SUCCEEDED} {_window(st)}",
        (queue, since_ms),
    )
    return [FinishedJob(int(e), int(f), bool(ok)) for e, f, ok in rows]


async def finished_summary(tx: Tx, st: Statements, queue: str, since_ms: int) -> FinishedSummary:
    s = st.schema
    [(ok, bad, first_ok, first_bad)] = await tx.rows(
        f"SELECT count(*) FILTER (WHERE {SUCCEEDED}), count(*) FILTER (WHERE {FAILED}),"
        f" min({s}.ms(completed_on)) FILTER (WHERE {SUCCEEDED}),"
        f" min({s}.ms(completed_on)) FILTER (WHERE {FAILED}) {_window(st)}",
        (queue, since_ms),
    )
    latencies = await tx.rows(
        f"SELECT {s}.ms(completed_on) - {s}.ms(created_on) {_window(st)}"
        " ORDER BY completed_on DESC LIMIT %s",
        (queue, since_ms, LATENCY_SAMPLE),
    )
    return FinishedSummary(
        succeeded=int(ok),
        failed=int(bad),
        first_succeeded_ms=None if first_ok is None else int(first_ok),
        first_failed_ms=None if first_bad is None else int(first_bad),
        latencies_ms=[float(latency) for (latency,) in latencies],
    )


async def finished_buckets(
    tx: Tx, st: Statements, queue: str, since_ms: int, bucket_ms: int, sample: int
) -> list[FinishedBucket]:
    s = st.schema
    bucket = f"{s}.ms(completed_on) - {s}.ms(completed_on) % %s"
    totals = await tx.rows(
        f"SELECT {bucket} AS b, count(*), count(*) FILTER (WHERE {FAILED}) {_window(st)}"
        " GROUP BY b ORDER BY b",
        (bucket_ms, queue, since_ms),
    )
    latencies: dict[int, list[float]] = {}
    for start, latency in await tx.rows(
        f"SELECT b, latency FROM (SELECT {bucket} AS b,"
        f" {s}.ms(completed_on) - {s}.ms(created_on) AS latency,"
        f" row_number() OVER (PARTITION BY {bucket} ORDER BY completed_on DESC) AS r"
        f" {_window(st)}) AS w WHERE r <= %s",
        (bucket_ms, bucket_ms, queue, since_ms, sample),
    ):
        latencies.setdefault(int(start), []).append(float(latency))
    return [
        FinishedBucket(int(start), int(count), int(failed), latencies.get(int(start), []))
        for start, count, failed in totals
    ]


async def prune_cutoff(
    tx: Tx, st: Statements, queue: str, states: str, keep: KeepJobs
) -> tuple[int, int] | None:
    """(completed_on in ms, seq) at or below which finished jobs of `states` (an SQL
    condition) go; None: none go. `seq` breaks ties, so exactly N are kept."""
    s = st.schema
    count, age_ms = keep_limits(keep)
    cutoffs: list[tuple[int, int]] = []
    [(now,)] = await tx.rows(f"SELECT {s}.ms(clock_timestamp())")
    if age_ms is not None:
        cutoffs.append((int(now) - age_ms - 1, 2**62))
    if count == 0:  # `true`: every finished job goes
        cutoffs.append((int(now) + 1, 2**62))
    elif count is not None:
        rows = await tx.rows(
            f"SELECT {s}.ms(completed_on), seq FROM {s}.job WHERE name = %s"
            f" AND completed_on IS NOT NULL AND {states}"
            " ORDER BY completed_on DESC, seq DESC LIMIT 1 OFFSET %s",
            (queue, count),
        )
        if rows:
            cutoffs.append((int(rows[0][0]), int(rows[0][1])))
    return max(cutoffs) if cutoffs else None


async def delete_chunk(
    tx: Tx, st: Statements, queue: str, states: str, cutoff: tuple[int, int]
) -> int:
    """Delete up to `DELETE_CHUNK` finished jobs of `states` at or below `cutoff`."""
    s = st.schema
    finished_at, seq = cutoff
    return await tx.run(
        f"DELETE FROM {s}.job WHERE (name, id) IN (SELECT name, id FROM {s}.job"
        f" WHERE name = %s AND completed_on IS NOT NULL AND {states}"
        f" AND ({s}.ms(completed_on) < %s OR ({s}.ms(completed_on) = %s AND seq <= %s))"
        " LIMIT %s)",
        (queue, finished_at, finished_at, seq, DELETE_CHUNK),
    )
