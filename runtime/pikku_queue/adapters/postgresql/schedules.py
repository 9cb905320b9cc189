"""Repeat schedules: one `schedule` row, one pending job per schedule (as on SQLite).

Why a schedule is a row plus its next job (and not a timer in some process): the next run is
an ordinary delayed job, so it survives restarts, is leased by whichever worker is free and
fires once across all workers; leasing a run adds the one after it, and the run's id carries
its time, so two workers adding the same next run add it once.
"""

from __future__ import annotations

from pikku_queue.adapters.postgresql.connections import Tx
from pikku_queue.adapters.postgresql.jobs import Statements
from pikku_queue.adapters.sqlite.schedules import PROCESSOR_SCHEDULE_KEY, first_run, next_run
from pikku_queue.options import Repeat
from pikku_queue.records import EnqueueRequest

__all__ = [
    "PROCESSOR_SCHEDULE_KEY",
    "add_instance",
    "add_next_instance",
    "add_schedule",
    "replace_processor_schedule",
    "server_now",
]


async def server_now(tx: Tx, st: Statements) -> int:
    [(now,)] = await tx.rows(f"SELECT {st.schema}.ms(clock_timestamp())")
    return int(now)


async def add_schedule(
    tx: Tx, st: Statements, request: EnqueueRequest, repeat: Repeat, payload: str, now: int
) -> str:
    """Store a job's `repeat` and its first run; the id of the pending run ("" past its
    limit). Enqueueing the same schedule again returns the run already pending."""
    s = st.schema
    key = request.schedule_key()
    existing = await tx.rows(
        f"SELECT id FROM {s}.job WHERE name = %s AND schedule_key = %s"
        " AND state IN ('created', 'retry', 'active') ORDER BY start_after LIMIT 1",
        (request.queue, key),
    )
    if existing:
        return str(existing[0][0])
    await tx.run(
        f"INSERT INTO {s}.schedule (name, key, cron, every, max_runs, runs, data, priority)"
        " VALUES (%s, %s, %s, %s, %s, 0, %s, %s) ON CONFLICT (name, key) DO UPDATE SET"
        " cron = excluded.cron, every = excluded.every, max_runs = excluded.max_runs,"
        " runs = 0, data = excluded.data, priority = excluded.priority",
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
    first = first_run(repeat, now + request.delay_ms)
    return await add_instance(tx, st, request.queue, key, first) or ""


async def replace_processor_schedule(
    tx: Tx, st: Statements, queue: str, repeat: Repeat | None, now: int
) -> None:
    """Unchanged is a no-op; changed replaces (its pending run too); None removes it."""
    s = st.schema
    key = PROCESSOR_SCHEDULE_KEY
    rows = await tx.rows(
        f"SELECT cron, every, max_runs FROM {s}.schedule WHERE name = %s AND key = %s FOR UPDATE",
        (queue, key),
    )
    wanted = None if repeat is None else (repeat.cron, repeat.every, repeat.limit)
    if (tuple(rows[0]) if rows else None) == wanted:
        return
    await tx.run(
        f"DELETE FROM {s}.job WHERE name = %s AND schedule_key = %s"
        " AND state IN ('created', 'retry')",
        (queue, key),
    )
    await tx.run(f"DELETE FROM {s}.schedule WHERE name = %s AND key = %s", (queue, key))
    if repeat is not None:
        await tx.run(
            f"INSERT INTO {s}.schedule (name, key, cron, every, max_runs, runs, data)"
            " VALUES (%s, %s, %s, %s, %s, 0, '{}')",
            (queue, key, repeat.cron, repeat.every, repeat.limit),
        )
        await add_instance(tx, st, queue, key, first_run(repeat, now))


async def add_next_instance(
    tx: Tx, st: Statements, queue: str, key: str, last_run: int, now: int
) -> None:
    """After a run of schedule `key` is leased, add the run after it (if the schedule lives)."""
    rows = await tx.rows(
        f"SELECT cron, every FROM {st.schema}.schedule WHERE name = %s AND key = %s",
        (queue, key),
    )
    if rows and (rows[0][0] is not None or rows[0][1] is not None):
        cron, every = rows[0]
        await add_instance(tx, st, queue, key, next_run(cron, every, last_run, now))


async def add_instance(tx: Tx, st: Statements, queue: str, key: str, run_at: int) -> str | None:
    """One run of a schedule as a job (None: the schedule is gone or at its limit). The id
    carries the run time, so adding the same run twice is a no-op."""
    s = st.schema
    rows = await tx.rows(
        f"UPDATE {s}.schedule SET runs = runs + 1 WHERE name = %s AND key = %s"
        " AND (max_runs IS NULL OR runs < max_runs) RETURNING data, priority",
        (queue, key),
    )
    if not rows:
        return None
    data, priority = rows[0]
    job_id = f"repeat:{key}:{run_at}"
    touched = await tx.run(
        f"INSERT INTO {s}.job (name, id, data, priority, start_after, created_on, schedule_key)"
        f" VALUES (%s, %s, %s, %s, {s}.at_ms(%s), {s}.at_ms(%s), %s)"
        " ON CONFLICT (name, id) DO NOTHING",
        (queue, job_id, data, priority, run_at, run_at, key),
    )
    if touched == 0:  # that run exists already: it was counted when it was added
        await tx.run(
            f"UPDATE {s}.schedule SET runs = runs - 1 WHERE name = %s AND key = %s", (queue, key)
        )
    return job_id
