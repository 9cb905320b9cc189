"""Listing and replaying the SQLite backend's dead-letter queues.

A dead-letter queue is an ordinary queue whose jobs are `DeadLetterRecord` payloads, so it
needs no table of its own and can be drained by a processor like any queue. Anything else
found there (a job enqueued by hand) is skipped by listing and replay instead of failing them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from pikku_queue.adapters.sqlite.codec import dumps, loads_or_text
from pikku_queue.payloads import raw_original
from pikku_queue.records import DeadLetterRecord


def _original(record: DeadLetterRecord) -> str | bytes:
    """What the job held before it failed: its JSON, or (a payload the engine could not read)
    its raw text or bytes, written back as they were."""
    raw = raw_original(record.payload_encoding, record.payload)
    return dumps(record.payload) if raw is None else raw


def as_record(record_id: str, text: str | bytes) -> DeadLetterRecord | None:
    """A dead-letter record, or None for anything else found in that queue."""
    data = loads_or_text(text)
    if not isinstance(data, dict) or "queue" not in data or "job_id" not in data:
        return None
    try:
        return DeadLetterRecord.from_payload(record_id, data)
    except (TypeError, ValueError, AttributeError):  # a look-alike no pikkugen writer wrote
        return None


def list_records(conn: sqlite3.Connection, dlq: str, limit: int) -> list[tuple[str, bytes]]:
    """(record id, payload bytes) of the oldest records still waiting in `dlq`."""
    # Each state's oldest `limit` from its run of `jobs_by_state`, merged: `state IN (...)
    # ORDER BY seq` alone walks the whole table in seq order (the records are the newest rows).
    run = (
        "SELECT * FROM (SELECT seq, id, CAST(payload AS BLOB) FROM jobs INDEXED BY jobs_by_state"
        " WHERE queue = ?1 AND state = '{}' ORDER BY seq LIMIT ?2)"
    )
    rows = conn.execute(
        f"SELECT * FROM ({run.format('waiting')} UNION ALL {run.format('delayed')})"
        " ORDER BY seq LIMIT ?2",
        (dlq, limit),
    ).fetchall()
    rows = [(i, p) for _, i, p in rows]
    return [(str(i), bytes(p)) for i, p in rows]


def replay_records(conn: sqlite3.Connection, dlq: str, ids: Sequence[str] | None, now: int) -> int:
    """Send records (all, or those `ids`) back to their queue as fresh jobs; how many went.

    The job keeps its id: reset in place while it is still stored, re-created otherwise;
    the record leaves the dead-letter queue."""
    if ids is None:
        rows = conn.execute(
            "SELECT id, CAST(payload AS BLOB) FROM jobs WHERE queue = ? AND state IN"
            " ('waiting', 'delayed') ORDER BY seq",
            (dlq,),
        ).fetchall()
    else:
        rows = []
        for record_id in ids:
            row = conn.execute(
                "SELECT id, CAST(payload AS BLOB) FROM jobs WHERE queue = ? AND id = ? AND state IN"
                " ('waiting', 'delayed')",
                (dlq, record_id),
            ).fetchone()
            if row is not None:
                rows.append(row)
    replayed = 0
    for record_id, text in rows:
        record = as_record(record_id, text)
        if record is None:
            continue  # a plain job in that queue, not a record: nowhere to send it
        payload = _original(record)
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
