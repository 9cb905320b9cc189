"""Each queue's job count per state, kept in `job_counts` by triggers, so a count is one row.

Why: counting a state with `count(*)` reads every one of its index entries, so a queue with
740,000 finished jobs took half a second to count (and the monitor asks every 2 s). The
triggers add and subtract in the statement that changes a row, inside its transaction, so a
count is exact by construction: a rolled-back transaction (or savepoint) takes its counts
with it, a process killed mid-transaction commits neither, and any program writing the file
with SQL (another pikkugen version, the `sqlite3` shell, a benchmark's `executemany`) keeps
them too, because the triggers live in the file, not in this code.

Installed once per file (`install_counters`), in one `BEGIN IMMEDIATE` transaction that
creates the triggers and counts the rows already stored, so no write can fall between the
count and the first trigger: opening a file made by an older version migrates it.

What a trigger cannot see: a row removed by `INSERT OR REPLACE` / `REPLACE` while
`recursive_triggers` is off (SQLite fires no delete trigger then). No pikkugen statement
replaces a job; `recount` rebuilds the table from the rows if another program did.

Two counts depend on the time, not just the state, and are read from small partial indexes
instead: the delayed jobs already due (they count as waiting, `pikku_queue.counts`; the
`jobs_delayed` index up to now) and the next runs of repeat schedules (`jobs_scheduled`, one
entry per schedule).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from pikku_queue.records import QueueCounts

#: The triggers, by name; every write path of the backend goes through one of them.
TRIGGERS = {
    "job_counts_insert": """
        CREATE TRIGGER IF NOT EXISTS job_counts_insert AFTER INSERT ON jobs BEGIN
            INSERT INTO job_counts (queue, state, n) VALUES (new.queue, new.state, 1)
                ON CONFLICT (queue, state) DO UPDATE SET n = n + 1;
        END""",
    "job_counts_delete": """
        CREATE TRIGGER IF NOT EXISTS job_counts_delete AFTER DELETE ON jobs BEGIN
            UPDATE job_counts SET n = n - 1 WHERE queue = old.queue AND state = old.state;
        END""",
    "job_counts_update": """
        CREATE TRIGGER IF NOT EXISTS job_counts_update AFTER UPDATE OF queue, state ON jobs
        WHEN old.state IS NOT new.state OR old.queue IS NOT new.queue BEGIN
            UPDATE job_counts SET n = n - 1 WHERE queue = old.queue AND state = old.state;
            INSERT INTO job_counts (queue, state, n) VALUES (new.queue, new.state, 1)
                ON CONFLICT (queue, state) DO UPDATE SET n = n + 1;
        END""",
}

_RECOUNT = (
    "INSERT INTO job_counts (queue, state, n) SELECT queue, state, count(*) FROM jobs"
    " GROUP BY queue, state"
)


def _installed(conn: sqlite3.Connection) -> bool:
    marks = ", ".join("?" * len(TRIGGERS))
    found = conn.execute(
        f"SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name IN ({marks})",
        tuple(TRIGGERS),
    ).fetchone()[0]
    return int(found) == len(TRIGGERS)


def install_counters(conn: sqlite3.Connection) -> None:
    """Create the triggers and count the stored jobs, once per file (a no-op after that).

    `conn` is in autocommit mode; the work is one `BEGIN IMMEDIATE` transaction, and the
    check is repeated inside it, so processes opening an old file together migrate it once."""
    if _installed(conn):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        if not _installed(conn):
            conn.execute("DELETE FROM job_counts")
            conn.execute(_RECOUNT)
            for ddl in TRIGGERS.values():
                conn.execute(ddl)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def recount(conn: sqlite3.Connection) -> None:
    """Rebuild every count from the rows (inside the caller's write transaction)."""
    conn.execute("DELETE FROM job_counts")
    conn.execute(_RECOUNT)


def stored_counts(conn: sqlite3.Connection, queue: str) -> dict[str, int]:
    """`{state: jobs}` of `queue` as the triggers keep them (every state a row is in)."""
    rows = conn.execute("SELECT state, n FROM job_counts WHERE queue = ?", (queue,)).fetchall()
    return {str(state): int(n) for state, n in rows if n}


def stored_count(conn: sqlite3.Connection, queue: str, state: str) -> int:
    """The jobs of `queue` in `state` (one primary-key lookup)."""
    row = conn.execute(
        "SELECT n FROM job_counts WHERE queue = ? AND state = ?", (queue, state)
    ).fetchone()
    return 0 if row is None else int(row[0])


def _scheduled(conn: sqlite3.Connection, queue: str, after: int | None) -> int:
    """Next runs of repeat schedules still delayed (those due after `after`, when given)."""
    sql = (
        "SELECT count(*) FROM jobs INDEXED BY jobs_scheduled WHERE queue = ?"
        " AND state = 'delayed' AND schedule IS NOT NULL"
    )
    if after is None:
        return int(conn.execute(sql, (queue,)).fetchone()[0])
    return int(conn.execute(sql + " AND run_at > ?", (queue, after)).fetchone()[0])


@contextmanager
def snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """One read transaction around several statements (unless one is open already), so they
    see the file at one moment: the stored delayed count and the due ones counted beside it
    must not straddle a lease that promotes due jobs."""
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")


def queue_counts(conn: sqlite3.Connection, queue: str, now: int) -> QueueCounts:
    """`Backend.counts` (`pikku_queue.counts`): the stored counts, the delayed jobs already
    due moved to waiting, all read at one moment."""
    with snapshot(conn):
        return _queue_counts(conn, queue, now)


def due_count(conn: sqlite3.Connection, queue: str, now: int) -> int:
    """The delayed jobs of `queue` already due at `now` (they count as waiting), from the
    `jobs_delayed` index up to now."""
    return int(
        conn.execute(
            "SELECT count(*) FROM jobs INDEXED BY jobs_delayed WHERE queue = ?"
            " AND state = 'delayed' AND run_at <= ?",
            (queue, now),
        ).fetchone()[0]
    )


def _queue_counts(conn: sqlite3.Connection, queue: str, now: int) -> QueueCounts:
    stored = stored_counts(conn, queue)
    due = due_count(conn, queue, now)
    return QueueCounts(
        waiting=stored.get("waiting", 0) + due,
        active=stored.get("active", 0),
        delayed=stored.get("delayed", 0) - due,
        completed=stored.get("completed", 0),
        failed=stored.get("failed", 0),
        dead_lettered=stored.get("dead_lettered", 0),
        cancelled=stored.get("cancelled", 0),
        scheduled=_scheduled(conn, queue, now),
    )


def pending(conn: sqlite3.Connection, queue: str) -> int:
    """Waiting, active and delayed jobs, less the next runs of repeat schedules."""
    with snapshot(conn):
        stored = stored_counts(conn, queue)
        waiting, active, delayed = (stored.get(s, 0) for s in ("waiting", "active", "delayed"))
        return waiting + active + delayed - _scheduled(conn, queue, None)
