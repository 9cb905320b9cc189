"""Leasing jobs and settling them, as statements on one SQLite write transaction.

Why every statement here carries the lease `token`: the token grows with every lease, so a
worker whose lease expired and was taken over can no longer settle, extend or release the
job (its UPDATE matches no row): at-least-once, never a lost update. Every way a lease ends
(a verdict, a release, a stall) clears `lease_until` and `worker` through the same statement
shape, so no path can leave a finished job looking leased.
"""

from __future__ import annotations

import logging
import sqlite3
import uuid
from dataclasses import dataclass
from typing import Any

from pikku_queue.adapters.sqlite.codec import dumps
from pikku_queue.adapters.sqlite.schedules import add_next_instance
from pikku_queue.outcomes import Completed, DeadLetter, Delivery, Outcome, Retry, stalled_error
from pikku_queue.payloads import UndecodablePayload, decode_payload
from pikku_queue.records import DeadLetterRecord, dead_letter_target

logger = logging.getLogger("pikku_queue.sqlite")

#: Matches the job only while the lease that `token` names still holds it.
#: Parameters: queue, id, token.
_STILL_LEASED = " WHERE queue = ? AND id = ? AND token = ? AND state = 'active'"
#: Back to waiting without counting the attempt: the job never got a verdict.
_GIVE_BACK = "state = 'waiting', attempts = max(attempts - 1, 0)"


def _end_lease(assignments: str) -> str:
    return f"UPDATE jobs SET {assignments}, lease_until = NULL, worker = NULL{_STILL_LEASED}"


_COMPLETE = _end_lease("state = 'completed', result = ?, finished_at = ?")
_RETRY = _end_lease("state = ?, run_at = ?, error = ?")
_FAIL = _end_lease("state = ?, error = ?, finished_at = ?")
_RELEASE = _end_lease(_GIVE_BACK)
_STALL = _end_lease(_GIVE_BACK + ", stalls = stalls + 1")
_EXTEND = "UPDATE jobs SET lease_until = ?" + _STILL_LEASED


@dataclass(frozen=True)
class Leased:
    id: str
    payload: Any
    attempt: int
    enqueued_at: int
    token: int
    #: JSON of the job's trace context (`pikku_queue.tracing`), if it has one.
    meta: str | None = None
    #: Set when the stored payload could not be read (`payload` is then its raw form).
    refused: UndecodablePayload | None = None


def lease_jobs(
    conn: sqlite3.Connection,
    queue: str,
    limit: int,
    lease_ms: int,
    worker_id: str,
    max_active: int | None,
    dead_letter_queue: str | None,
    now: int,
) -> list[Leased]:
    """Lease up to `limit` jobs by priority then age, inside the global `max_active` cap.

    Due delayed jobs are promoted first; a leased run of a schedule adds its next run; a
    payload no processor could read is dead-lettered here instead of being handed out."""
    conn.execute(
        "UPDATE jobs SET state = 'waiting' WHERE queue = ? AND state = 'delayed' AND run_at <= ?",
        (queue, now),
    )
    take = limit
    if max_active is not None:
        active = conn.execute(
            "SELECT count(*) FROM jobs WHERE queue = ? AND state = 'active'", (queue,)
        ).fetchone()[0]
        take = min(take, max_active - int(active))
        if take <= 0:
            return []
    rows = conn.execute(
        "UPDATE jobs SET state = 'active', attempts = attempts + 1, token = token + 1,"
        " lease_until = ?, worker = ? WHERE seq IN (SELECT seq FROM jobs"
        " WHERE queue = ? AND state = 'waiting' ORDER BY priority, seq LIMIT ?)"
        # As bytes: a TEXT value that is not UTF-8 would fail the fetch, and the whole lease.
        " RETURNING priority, seq, id, CAST(payload AS BLOB), attempts, enqueued_at, token,"
        " schedule, run_at, meta",
        (now + lease_ms, worker_id, queue, take),
    ).fetchall()
    rows.sort(key=lambda r: (r[0], r[1]))
    leased: list[Leased] = []
    for _, _, id_, raw, attempts, enqueued_at, token, schedule, run_at, meta in rows:
        if schedule is not None:
            add_next_instance(conn, queue, schedule, run_at, now)
        try:
            payload, refused = decode_payload(raw), None
        except UndecodablePayload as exc:
            # Written by something other than pikku_queue: no processor can read it. Handed
            # out all the same, so the engine dead-letters it like any invalid payload.
            payload, refused = exc.stored, exc
        leased.append(Leased(id_, payload, attempts, enqueued_at, token, meta, refused))
    return leased


def settle(
    conn: sqlite3.Connection,
    delivery: Delivery,
    outcome: Outcome,
    token: int,
    dead_letter_queue: str | None,
    now: int,
) -> None:
    """Apply one verdict to the job `token` leased (a no-op once that lease is lost)."""
    guard = (delivery.queue, delivery.job_id, token)
    if isinstance(outcome, Completed):
        conn.execute(_COMPLETE, (dumps(outcome.result), now, *guard))
    elif isinstance(outcome, Retry):
        state = "delayed" if outcome.delay_ms > 0 else "waiting"
        conn.execute(
            _RETRY, (state, now + outcome.delay_ms, dumps(outcome.error.as_dict()), *guard)
        )
    else:
        dead_letter(
            conn,
            guard,
            delivery.payload,
            delivery.attempt,
            outcome,
            dead_letter_queue,
            now,
            delivery.payload_encoding,
        )


def dead_letter(
    conn: sqlite3.Connection,
    guard: tuple[str, str, int],
    payload: Any,
    attempts: int,
    outcome: DeadLetter,
    dead_letter_queue: str | None,
    now: int,
    payload_encoding: str = "json",
) -> None:
    """Finish the job as failed, or as dead-lettered with a record in `dead_letter_queue`.

    The record is only written if this lease still held the job, so a lost lease never
    produces a second record for the same failure; a dead-letter record that fails is never
    dead-lettered again (`dead_letter_target`)."""
    dead_letter_queue = dead_letter_target(payload, dead_letter_queue)
    state = "dead_lettered" if dead_letter_queue else "failed"
    cursor = conn.execute(_FAIL, (state, dumps(outcome.error.as_dict()), now, *guard))
    if cursor.rowcount == 0 or not dead_letter_queue:
        return
    queue, job_id, _ = guard
    record = DeadLetterRecord(
        id=uuid.uuid4().hex,
        queue=queue,
        job_id=job_id,
        payload=payload,
        attempts=attempts,
        reason=outcome.reason,
        error=outcome.error,
        failed_at_ms=now,
        payload_encoding=payload_encoding,
    )
    conn.execute(
        "INSERT INTO jobs (queue, id, state, run_at, payload, enqueued_at)"
        " VALUES (?, ?, 'waiting', ?, ?, ?)",
        (dead_letter_queue, record.id, now, dumps(record.as_payload()), now),
    )


def extend_leases(conn: sqlite3.Connection, until: int, held: list[tuple[str, str, int]]) -> None:
    conn.executemany(_EXTEND, [(until, *guard) for guard in held])


def release_leases(conn: sqlite3.Connection, held: list[tuple[str, str, int]]) -> None:
    conn.executemany(_RELEASE, held)


def recover_expired(
    conn: sqlite3.Connection,
    queue: str,
    max_stalled_count: int,
    dead_letter_queue: str | None,
    now: int,
) -> list[str]:
    """Put back every job whose lease expired (its worker died or blocked); past
    `max_stalled_count` expiries the job is dead-lettered as `stalled` instead.

    Each row is its own savepoint: a row that cannot be handled (a payload or a value no
    statement can bind) is logged and left for the next round, and never undoes the recovery
    of the other dead workers' jobs in the same transaction."""
    rows = conn.execute(
        "SELECT id, CAST(payload AS BLOB), attempts, stalls, token FROM jobs"
        " WHERE queue = ? AND state = 'active' AND lease_until < ?",
        (queue, now),
    ).fetchall()
    recovered: list[str] = []
    for job_id, raw, attempts, stalls, token in rows:
        conn.execute("SAVEPOINT pikku_recover")
        try:
            _recover_one(conn, (queue, job_id, token), raw, attempts, stalls, max_stalled_count,
                         dead_letter_queue, now)  # fmt: skip
        except Exception:
            conn.execute("ROLLBACK TO pikku_recover")
            logger.exception("%s job %s: could not recover its expired lease", queue, job_id)
        else:
            recovered.append(str(job_id))
        conn.execute("RELEASE pikku_recover")
    return recovered


def _recover_one(
    conn: sqlite3.Connection,
    guard: tuple[str, str, int],
    raw: bytes,
    attempts: int,
    stalls: int,
    max_stalled_count: int,
    dead_letter_queue: str | None,
    now: int,
) -> None:
    if stalls + 1 <= max_stalled_count:
        conn.execute(_STALL, guard)
        return
    error = stalled_error(stalls + 1, max_stalled_count)
    encoding = "json"
    try:
        payload = decode_payload(raw)
    except UndecodablePayload as exc:
        payload, encoding = exc.stored, exc.encoding
    dead_letter(
        conn, guard, payload, attempts, DeadLetter("stalled", error), dead_letter_queue, now,
        encoding,
    )  # fmt: skip
