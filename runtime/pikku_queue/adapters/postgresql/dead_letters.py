"""Listing and replaying dead-letter queues (ordinary queues whose jobs are
`DeadLetterRecord` payloads, as on every backend with a job table)."""

from __future__ import annotations

from collections.abc import Sequence

from pikku_queue.adapters.postgresql.connections import Tx
from pikku_queue.adapters.postgresql.jobs import READY, Statements
from pikku_queue.adapters.sqlite.codec import dumps
from pikku_queue.adapters.sqlite.dead_letters import as_record
from pikku_queue.payloads import raw_original
from pikku_queue.records import DeadLetterRecord


def original(record: DeadLetterRecord) -> str:
    """What the job held before it failed: its JSON, or (a payload the engine could not read)
    its raw text, written back as it was. (A text column holds no bytes that are not UTF-8,
    so no record here carries base64.)"""
    raw = raw_original(record.payload_encoding, record.payload)
    if raw is None:
        return dumps(record.payload)
    return raw if isinstance(raw, str) else raw.decode("utf-8", "replace")


async def list_records(tx: Tx, st: Statements, dlq: str, limit: int) -> list[DeadLetterRecord]:
    rows = await tx.rows(
        f"SELECT id, data FROM {st.schema}.job WHERE name = %s AND state IN {READY}"
        " ORDER BY seq LIMIT %s",
        (dlq, limit),
    )
    records = (as_record(str(i), d) for i, d in rows)
    return [record for record in records if record is not None]


async def replay_records(tx: Tx, st: Statements, dlq: str, ids: Sequence[str] | None) -> int:
    """Send records (all, or those `ids`) back to their queue as fresh jobs; how many went.
    The job keeps its id: reset in place while it is still stored, re-created otherwise; the
    record leaves the dead-letter queue."""
    s = st.schema
    where = "" if ids is None else " AND id = ANY(%s::text[])"
    params: tuple[object, ...] = (dlq,) if ids is None else (dlq, list(ids))
    rows = await tx.rows(
        f"SELECT id, data FROM {s}.job WHERE name = %s AND state IN {READY}{where}"
        " ORDER BY seq FOR UPDATE SKIP LOCKED",
        params,
    )
    replayed = 0
    queues: set[str] = set()
    for record_id, text in rows:
        record = as_record(str(record_id), text)
        if record is None:
            continue  # a plain job in that queue, not a record: nowhere to send it
        payload = original(record)
        touched = await tx.run(
            f"UPDATE {s}.job SET state = 'created', retry_count = 0, stalled_count = 0,"
            " error = NULL, output = NULL, progress = NULL, completed_on = NULL,"
            " dead_letter = NULL, lease_until = NULL, worker = NULL,"
            " start_after = clock_timestamp(), created_on = clock_timestamp(), data = %s"
            " WHERE name = %s AND id = %s AND state = 'failed'",
            (payload, record.queue, record.job_id),
        )
        if touched == 0:
            await tx.run(
                f"INSERT INTO {s}.job (name, id, data) VALUES (%s, %s, %s)"
                " ON CONFLICT (name, id) DO NOTHING",
                (record.queue, record.job_id, payload),
            )
        await tx.run(f"DELETE FROM {s}.job WHERE name = %s AND id = %s", (dlq, record_id))
        queues.add(record.queue)
        replayed += 1
    for queue in sorted(queues):
        await tx.rows(st.notify, (st.channel, queue))
    return replayed
