"""Repeat schedules in the SQLite backend: one `schedules` row, one pending job per schedule.

Why a schedule is a row plus its next job (and not a timer): the next run is an ordinary
delayed job, so it survives restarts, is leased by whichever worker is free, and costs
nothing while it waits. Leasing a run adds the one after it in the same transaction, so
two workers can never both add it, and a crashed worker never loses the schedule.
"""

from __future__ import annotations

import sqlite3

from pikku_queue import fields
from pikku_queue.cron import parse_cron
from pikku_queue.options import Repeat
from pikku_queue.records import EnqueueRequest

#: The `schedules` key of a processor's own `repeat`: one per queue, so a changed schedule
#: replaces the old one (per-job schedules are keyed by their job_id or a hash).
PROCESSOR_SCHEDULE_KEY = "pikku:processor"


def first_run(repeat: Repeat, now: int) -> int:
    # `every` fires at once and then every N ms; `cron` waits for its next fire time.
    if repeat.cron is not None:
        return parse_cron(repeat.cron).next_after(now)
    return now


def next_run(cron: str | None, every: int | None, last_run: int, now: int) -> int:
    if cron is not None:
        return parse_cron(cron).next_after(max(last_run, now))
    assert every is not None
    return max(last_run + every, now)


def add_schedule(
    conn: sqlite3.Connection, request: EnqueueRequest, repeat: Repeat, payload: str, now: int
) -> str:
    """Store a job's `repeat` and its first run; the id of the pending run ("" past its limit).

    Enqueueing the same schedule again returns the run already pending instead of adding one."""
    key = request.schedule_key()
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
    first = first_run(repeat, now + request.delay_ms)
    return add_instance(conn, request.queue, key, first, now) or ""


def replace_processor_schedule(
    conn: sqlite3.Connection, queue: str, repeat: Repeat | None, now: int
) -> None:
    """See `SqliteBackend.set_processor_schedule`: unchanged is a no-op, changed replaces."""
    key = PROCESSOR_SCHEDULE_KEY
    row = conn.execute(
        "SELECT cron, every, max_runs FROM schedules WHERE queue = ? AND key = ?",
        (queue, key),
    ).fetchone()
    wanted = None if repeat is None else (repeat.cron, repeat.every, repeat.limit)
    if (None if row is None else tuple(row)) == wanted:
        return
    conn.execute(
        "DELETE FROM jobs WHERE queue = ? AND schedule = ? AND state IN ('waiting', 'delayed')",
        (queue, key),
    )
    conn.execute("DELETE FROM schedules WHERE queue = ? AND key = ?", (queue, key))
    if repeat is not None:
        conn.execute(
            "INSERT INTO schedules (queue, key, cron, every, max_runs, runs, payload)"
            " VALUES (?, ?, ?, ?, ?, 0, '{}')",
            (queue, key, repeat.cron, repeat.every, repeat.limit),
        )
        add_instance(conn, queue, key, first_run(repeat, now), now)


def add_next_instance(
    conn: sqlite3.Connection, queue: str, key: str, last_run: int, now: int
) -> None:
    """After a run of schedule `key` is leased, add the run after it (if the schedule lives).
    A `schedules` row no pikkugen writer wrote raises `fields.InvalidRecord` (the leased run
    then gets that verdict; the schedule adds no further run)."""
    cron, every = conn.execute(
        "SELECT cron, every FROM schedules WHERE queue = ? AND key = ?",
        (queue, key),
    ).fetchone() or (None, None)
    if cron is None and every is None:
        return
    if cron is not None:
        expression = fields.text("schedules.cron", cron)
        try:
            parse_cron(expression)
        except ValueError as exc:
            raise fields.InvalidRecord("schedules.cron", cron, str(exc)) from None
        due = next_run(expression, None, last_run, now)
    else:
        due = next_run(None, fields.integer("schedules.every", every, minimum=1), last_run, now)
    add_instance(conn, queue, key, due, now)


def add_instance(
    conn: sqlite3.Connection, queue: str, key: str, run_at: int, now: int
) -> str | None:
    """One run of a schedule as a job (None: schedule gone or at its limit).

    The id carries the run time, so adding the same run twice is a no-op."""
    row = conn.execute(
        "SELECT max_runs, runs, payload, priority FROM schedules WHERE queue = ? AND key = ?",
        (queue, key),
    ).fetchone()
    if row is None:
        return None
    max_runs, runs, payload, priority = row
    limit = fields.optional_integer("schedules.max_runs", max_runs)
    if limit is not None and fields.integer("schedules.runs", runs) >= limit:
        return None
    job_id = f"repeat:{key}:{run_at}"
    state = "delayed" if run_at > now else "waiting"
    conn.execute(
        "INSERT INTO jobs (queue, id, state, priority, run_at, payload, enqueued_at, schedule)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (queue, id) DO NOTHING",
        (queue, job_id, state, priority, run_at, payload, run_at, key),
    )
    conn.execute("UPDATE schedules SET runs = runs + 1 WHERE queue = ? AND key = ?", (queue, key))
    return job_id
