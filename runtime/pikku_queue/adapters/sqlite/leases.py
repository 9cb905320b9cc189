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

from pikku_queue import fields
from pikku_queue.adapters.sqlite.codec import dumps
from pikku_queue.adapters.sqlite.counters import stored_count
from pikku_queue.adapters.sqlite.limits import (
    UNGROUPED,
    allowance,
    count_starts,
    grouped_candidates,
)
from pikku_queue.adapters.sqlite.schedules import add_next_instance
from pikku_queue.adapters.sqlite.schema import JOB_STATES, UNKNOWN_STATE
from pikku_queue.options import MAX_PRIORITY, RateLimit
from pikku_queue.outcomes import Completed, DeadLetter, Delivery, Outcome, Retry, stalled_error
from pikku_queue.payloads import (
    UndecodablePayload,
    dead_letter_forms,
    decode_payload,
    minimal_error,
)
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
    #: The job's trace context (`pikku_queue.tracing`), if it has one.
    meta: dict[str, str] | None = None
    #: Set when the stored payload could not be read (`payload` is then its raw form).
    refused: UndecodablePayload | None = None
    #: Set when another column holds a value no pikkugen writer writes (`pikku_queue.fields`):
    #: the engine dead-letters the job as `invalid_record` (the other values are defaults).
    invalid: fields.InvalidRecord | None = None


#: What a lease returns of each job, in `_leased`'s order (the payload as bytes: a TEXT value
#: that is not UTF-8 would fail the fetch, and the whole lease).
_LEASED = (
    " RETURNING priority, seq, id, CAST(payload AS BLOB), attempts, enqueued_at, token,"
    " schedule, run_at, meta, stalls"
)
#: How often (ms) a worker's lease looks for jobs of a queue in a state no worker serves (and
#: at its first lease of the queue): a scan of the queue's rows, too slow for every lease.
SWEEP_EVERY_MS = 300_000
#: A lease counts the attempt only on an integer (so a foreign value is read back as it was).
_LEASE = (
    "UPDATE jobs SET state = 'active', token = token + 1, lease_until = ?, worker = ?,"
    " attempts = CASE WHEN typeof(attempts) = 'integer' THEN attempts + 1 ELSE attempts END"
)


def lease_jobs(
    conn: sqlite3.Connection,
    queue: str,
    limit: int,
    lease_ms: int,
    worker_id: str,
    max_active: int | None,
    dead_letter_queue: str | None,
    now: int,
    sweep: bool = False,
    rate: RateLimit | None = None,
) -> list[Leased]:
    """Lease up to `limit` jobs by priority then age, inside the global `max_active` cap and
    the queue's `rate` limit (`sqlite.limits`: its window counts what this lease starts).

    Due delayed jobs are promoted first; a leased run of a schedule adds its next run. Every
    column is read through `pikku_queue.fields`: a row holding what no pikkugen writer writes
    (a text priority, a `meta` that is not JSON, a state no worker serves, a payload no
    processor could read) is leased all the same, so the engine gives it its verdict, and its
    neighbours in the lease go on. Nothing a row holds makes the lease raise. With `sweep`,
    jobs in a state no worker serves are looked for first (a scan of the queue's rows: the
    backend asks for it once per `SWEEP_EVERY_MS`)."""
    conn.execute(
        # A due time that is no time at all (text, a blob, past MAX_STORED_INT) is due now:
        # the lease then refuses it, instead of it waiting for ever. (Two ranges of the
        # delayed index, never a scan of every delayed job.)
        "UPDATE jobs SET state = 'waiting' WHERE seq IN (SELECT seq FROM jobs WHERE"
        " queue = ?1 AND state = 'delayed' AND run_at <= ?2 UNION ALL SELECT seq FROM jobs"
        " WHERE queue = ?1 AND state = 'delayed' AND run_at > ?3)",
        (queue, now, fields.MAX_STORED_INT),
    )
    take = limit
    if max_active is not None:
        take = min(take, max_active - stored_count(conn, queue, "active"))
        if take <= 0:
            return []
    if rate is not None and rate.group_key is None:
        take = min(take, allowance(conn, queue, UNGROUPED, rate, now))
        if take <= 0:
            return []
    rows: list[tuple[Any, ...]] = []
    unknown = []
    if sweep:
        unknown = conn.execute(
            f"SELECT seq, state FROM jobs WHERE queue = ? AND {UNKNOWN_STATE} LIMIT ?",
            (queue, take),
        ).fetchall()
    states = {seq: state for seq, state in unknown}
    if unknown:  # rare: only a foreign writer puts a job in a state no worker serves
        marks = ", ".join("?" * len(unknown))
        rows += conn.execute(
            f"{_LEASE} WHERE seq IN ({marks}){_LEASED}",
            (now + lease_ms, worker_id, *states),
        ).fetchall()
    if take > len(rows) and rate is not None and rate.group_key is not None:
        chosen, per_group = grouped_candidates(conn, queue, take - len(rows), rate, now)
        if chosen:
            marks = ", ".join("?" * len(chosen))
            rows += conn.execute(
                f"{_LEASE} WHERE seq IN ({marks}){_LEASED}",
                (now + lease_ms, worker_id, *chosen),
            ).fetchall()
        for group, started in per_group.items():
            count_starts(conn, queue, group, started, rate, now)
    elif take > len(rows):
        rows += conn.execute(
            f"{_LEASE} WHERE seq IN (SELECT seq FROM jobs"
            f" WHERE queue = ? AND state = 'waiting' ORDER BY priority, seq LIMIT ?){_LEASED}",
            (now + lease_ms, worker_id, queue, take - len(rows)),
        ).fetchall()
    if rate is not None and rate.group_key is None:
        count_starts(conn, queue, UNGROUPED, len(rows), rate, now)
    rows.sort(key=_lease_order)
    return [_leased(conn, queue, row, states.get(row[1]), now) for row in rows]


def _lease_order(row: tuple[Any, ...]) -> tuple[int, int]:
    """Priority then age, as the lease's ORDER BY; a priority that is none sorts last (and
    never compares a text with a number)."""
    try:
        priority = fields.integer("priority", row[0], maximum=MAX_PRIORITY)
    except fields.InvalidRecord:
        priority = MAX_PRIORITY + 1
    return priority, int(row[1])


def _leased(
    conn: sqlite3.Connection, queue: str, row: tuple[Any, ...], state: Any, now: int
) -> Leased:
    """One leased row, every column decoded; the first one refused makes it `invalid` (its
    schedule still gets its next run when the schedule and the due time can be read)."""
    priority, _, id_, raw, attempts, enqueued_at, token, schedule, run_at, meta, stalls = row
    invalid: fields.InvalidRecord | None = None
    try:
        key = fields.optional_text("schedule", schedule)
        due = fields.integer("run_at", run_at)
        if key is not None:
            add_next_instance(conn, queue, key, due, now)
        if state is not None:
            fields.one_of("state", state, JOB_STATES)
        fields.integer("priority", priority, maximum=MAX_PRIORITY)
        attempt = fields.integer("attempts", attempts, minimum=1)
        fields.integer("stalls", stalls)
        fields.integer("token", token, minimum=1)
        enqueued = fields.integer("enqueued_at", enqueued_at)
        context = fields.trace_context("meta", meta)
    except fields.InvalidRecord as exc:
        invalid = exc
    try:
        payload, refused = decode_payload(raw), None
    except UndecodablePayload as exc:
        # Written by something other than pikku_queue: no processor can read it. Handed
        # out all the same, so the engine dead-letters it like any invalid payload.
        payload, refused = exc.stored, exc
    if invalid is not None:  # the record keeps the payload (or its raw form) all the same
        return Leased(id_, payload, 1, 0, token, refused=refused, invalid=invalid)
    return Leased(id_, payload, attempt, enqueued, token, context, refused)


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
    dead-lettered again (`dead_letter_target`). The record is written by the total writer
    (`payloads.dead_letter_forms`); one that still cannot be stored ends the job `failed`
    with a minimal error instead, so no settle fails on it and nothing redelivers it."""
    error = outcome.error
    dead_letter_queue = dead_letter_target(payload, dead_letter_queue)
    queue, job_id, _ = guard
    text = None
    if dead_letter_queue:
        record = DeadLetterRecord(
            id=uuid.uuid4().hex,
            queue=queue,
            job_id=job_id,
            payload=payload,
            attempts=attempts,
            reason=outcome.reason,
            error=error,
            failed_at_ms=now,
            payload_encoding=payload_encoding,
        )
        text = next(dead_letter_forms(record), None)
        if text is None:
            logger.error(
                "%s job %s: its dead-letter record cannot be written; failed instead", queue, job_id
            )
            dead_letter_queue, error = None, minimal_error(error)
    state = "dead_lettered" if dead_letter_queue else "failed"
    cursor = conn.execute(_FAIL, (state, dumps(error.as_dict()), now, *guard))
    if cursor.rowcount == 0 or text is None:
        return
    conn.execute("SAVEPOINT pikku_record")
    try:
        conn.execute(
            "INSERT INTO jobs (queue, id, state, run_at, payload, enqueued_at)"
            " VALUES (?, ?, 'waiting', ?, ?, ?)",
            (dead_letter_queue, record.id, now, text, now),
        )
    except sqlite3.Error:
        conn.execute("ROLLBACK TO pikku_record")
        logger.exception("%s job %s: storing its dead-letter record failed", queue, job_id)
        conn.execute(
            "UPDATE jobs SET state = 'failed', error = ? WHERE queue = ? AND id = ? AND token = ?",
            (dumps(minimal_error(error).as_dict()), *guard),
        )
    conn.execute("RELEASE pikku_record")


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

    A lease whose end is no time a live worker could hold (NULL, text, a blob, later than
    `fields.MAX_LEASE_MS` from now) has ended too, so no stored value keeps a job active for
    ever; counts no pikkugen writer writes make the job an `invalid_record` dead letter.
    Each row is its own savepoint: a row that cannot be handled (a value no statement can
    bind) is logged and left for the next round, and never undoes the recovery of the other
    dead workers' jobs in the same transaction."""
    rows = conn.execute(
        "SELECT id, CAST(payload AS BLOB), attempts, stalls, token FROM jobs"
        " WHERE queue = ? AND state = 'active'"
        " AND (lease_until < ? OR lease_until > ? OR lease_until IS NULL)",
        (queue, now, now + fields.MAX_LEASE_MS),
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
    attempts: object,
    stalls: object,
    max_stalled_count: int,
    dead_letter_queue: str | None,
    now: int,
) -> None:
    try:
        made = fields.integer("attempts", attempts)
        stalled = fields.integer("stalls", stalls) + 1
    except fields.InvalidRecord as invalid:
        made, outcome = 1, invalid.verdict()
    else:
        if stalled <= max_stalled_count:
            conn.execute(_STALL, guard)
            return
        outcome = DeadLetter("stalled", stalled_error(stalled, max_stalled_count))
    encoding = "json"
    try:
        payload = decode_payload(raw)
    except UndecodablePayload as exc:
        payload, encoding = exc.stored, exc.encoding
    dead_letter(conn, guard, payload, made, outcome, dead_letter_queue, now, encoding)
