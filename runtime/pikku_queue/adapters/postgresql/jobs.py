"""Enqueueing, leasing and settling jobs: the PostgreSQL backend's statements on `Tx`.

Why they look the way they do:

* One round trip where it matters. A bulk enqueue is one `INSERT … SELECT FROM unnest(…)`
  that also notifies the served queues (`pg_notify` in the same statement, so the
  notification is sent when the inserting transaction commits, and never for a rollback);
  a lease is one `UPDATE … FROM (SELECT … FOR UPDATE SKIP LOCKED)`; completions and retries
  settled together are one `UPDATE … FROM unnest(…)`.
* Every lease carries `lease_token`, which grows with every lease: a worker whose lease
  expired and was taken over can no longer settle, extend or release the job (its UPDATE
  matches no row): at-least-once, never a lost update.
* The server's clock stamps every time (`clock_timestamp()`), so workers on machines whose
  clocks disagree still agree on when a lease expires or a delayed job is due.
* `max_concurrency` is checked and leased under a transaction-level advisory lock per queue,
  so two workers can never both see the last free slot.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pikku_queue import fields
from pikku_queue.adapters.postgresql.connections import Tx
from pikku_queue.adapters.postgresql.limits import (
    UNGROUPED,
    LimitStatements,
    allowance,
    count_starts,
    grouped_candidates,
)
from pikku_queue.adapters.sqlite.codec import dumps
from pikku_queue.options import MAX_DELAY_MS, MAX_PRIORITY, RateLimit
from pikku_queue.outcomes import (
    Cancelled,
    Completed,
    DeadLetter,
    Delivery,
    Outcome,
    Retry,
    stalled_error,
)
from pikku_queue.payloads import UndecodablePayload, decode_payload
from pikku_queue.records import CancelResult, DeadLetterRecord, dead_letter_target

#: States of a job that waits for a lease (pg-boss's: `retry` once an attempt failed).
READY = "('created', 'retry')"
#: A due time further ahead than this is no pikkugen writer's: a delay, a retry's backoff and
#: a schedule's step are each at most `MAX_DELAY_MS`, so a run is due at most twice that
#: ahead. Such a job (another program's write, a start_after centuries ahead) is leased at
#: once and refused as `invalid_record`, instead of keeping a burst worker waiting for ever.
FAR_FUTURE_MS = 2 * MAX_DELAY_MS
#: A waiting job the lease may take: due now, or due too far ahead to be any writer's.
DUE = (
    "(start_after <= clock_timestamp() OR start_after > clock_timestamp()"
    f" + {FAR_FUTURE_MS} * interval '1 millisecond')"
)
#: The largest `integer` and `bigint`.
MAX_INT4 = 2**31 - 1
MAX_INT8 = 2**63 - 1


#: A job asked to stop (`JobHandle.cancel`) while it ran: every way its lease ends (a failed
#: attempt, a release, an expiry) ends it `cancelled` instead, in the same statement.
FLAGGED = "j.cancel_requested IS NOT NULL"


def cancelled_error_sql(attempts: str = "j.retry_count") -> str:
    """`outcomes.cancelled_error` as the JSON text the error column holds, in SQL."""
    return (
        "json_build_object('type', 'JobCancelledError', 'message',"
        f" 'cancelled while running (attempt ' || {attempts} || ')', 'traceback', '')::text"
    )


@dataclass(frozen=True)
class NewJob:
    """One row to insert (`insert_jobs`)."""

    queue: str
    id: str
    data: str
    priority: int = 0
    delay_ms: int = 0
    meta: str | None = None
    schedule_key: str | None = None
    #: The id is the caller's (`job_id`): it may exist already, and then stays as it is.
    keyed: bool = False


@dataclass(frozen=True)
class Leased:
    id: str
    payload: Any
    attempt: int
    enqueued_at: int
    token: int
    schedule_key: str | None
    start_after: int
    #: The stored trace context, read by `fields.trace_context`.
    context: dict[str, str] | None = None
    #: Set when the stored payload could not be read (`payload` is then its raw form).
    refused: UndecodablePayload | None = None
    #: Set when another column holds what no pikkugen writer writes (`fields`): the engine
    #: dead-letters the job as `invalid_record`, the message naming the column.
    invalid: fields.InvalidRecord | None = None


class Statements:
    """The statements of one schema, formatted once."""

    def __init__(self, schema: str, channel: str, finished_channel: str) -> None:
        s = self.schema = schema
        self.channel = channel
        self.finished_channel = finished_channel
        # Jobs with generated ids cannot conflict: without ON CONFLICT the insert is ~2.5x
        # faster (no speculative insertion per row); a batch with a caller's job id uses it.
        # The rows travel as one JSON text per column, unpacked by the server (`ROWS FROM`
        # zips them): psycopg dumps a Python list as an array element by element in Python,
        # json.dumps in C, which is most of what a bulk enqueue of small jobs costs.
        self.insert_keyed, self.insert = tuple(
            f"WITH inserted AS (INSERT INTO {s}.job"
            " (name, id, data, priority, start_after, meta, schedule_key)"
            " SELECT v.name, v.id, v.data, v.priority::int,"
            " clock_timestamp() + v.delay_ms::bigint * interval '1 millisecond', v.meta,"
            " v.schedule_key FROM ROWS FROM (json_array_elements_text(%s::json),"
            " json_array_elements_text(%s::json), json_array_elements_text(%s::json),"
            " json_array_elements_text(%s::json), json_array_elements_text(%s::json),"
            " json_array_elements_text(%s::json), json_array_elements_text(%s::json))"
            " AS v(name, id, data, priority, delay_ms, meta, schedule_key)"
            f"{conflict} RETURNING 1)"
            " SELECT pg_notify(%s, q) FROM unnest(%s::text[]) AS q"
            for conflict in (" ON CONFLICT (name, id) DO NOTHING", "")
        )
        # Neither count can overflow whatever another program stored: a retry_count at
        # the top of its type stays (and the reader refuses it); a token wraps around.
        lease = (
            f"UPDATE {s}.job j SET state = 'active', retry_count = CASE WHEN"
            f" j.retry_count < {MAX_INT4} THEN j.retry_count + 1 ELSE j.retry_count END,"
            f" lease_token = CASE WHEN j.lease_token < {MAX_INT8} THEN j.lease_token + 1"
            f" ELSE -{MAX_INT8} END, started_on = clock_timestamp(),"
            " lease_until = clock_timestamp() + %s * interval '1 millisecond', worker = %s"
        )
        leased = (
            " WHERE j.name = next.name AND j.id = next.id"
            f" RETURNING j.priority, j.seq, j.id, j.data, j.retry_count, {s}.ms(j.created_on),"
            f" j.lease_token, j.schedule_key, {s}.ms(j.start_after), j.meta,"
            " j.start_after > clock_timestamp(), j.start_after::text"
        )
        self.reserve = (
            f"{lease} FROM (SELECT name, id FROM {s}.job WHERE name = %s AND state IN {READY}"
            f" AND {DUE} AND NOT EXISTS (SELECT 1 FROM {s}.paused WHERE paused.name = %s)"
            f" ORDER BY priority, seq LIMIT %s FOR UPDATE SKIP LOCKED) AS next{leased}"
        )
        # The jobs a grouped rate-limited lease chose (`limits.grouped_candidates`, which
        # holds their rows locked).
        self.reserve_ids = (
            f"{lease} FROM (SELECT name, id FROM {s}.job WHERE name = %s"
            f" AND id = ANY(%s::text[]) AND state IN {READY}) AS next{leased}"
        )
        self.limits = LimitStatements(s, READY, DUE)
        self.active = f"SELECT count(*) FROM {s}.job WHERE name = %s AND state = 'active'"
        # Completions and retries of one flush, in one statement: state 'completed' or 'retry'.
        # ... and the queues of the jobs that finished are notified on the finished channel,
        # in the same statement (one notification per queue: PostgreSQL folds equal ones).
        # A retry of a job asked to stop meanwhile ends it cancelled instead.
        stops = f"v.state = 'retry' AND {FLAGGED}"
        self.finish = (
            f"WITH settled AS (UPDATE {s}.job j SET state ="
            f" CASE WHEN {stops} THEN 'cancelled' ELSE v.state END,"
            " output = CASE WHEN v.state = 'completed' THEN v.output ELSE j.output END,"
            f" error = CASE WHEN {stops} THEN {cancelled_error_sql()}"
            " ELSE coalesce(v.error, j.error) END,"
            f" completed_on = CASE WHEN v.state <> 'retry' OR {FLAGGED}"
            " THEN clock_timestamp() END,"
            " start_after = CASE WHEN v.state = 'retry'"
            " THEN clock_timestamp() + v.delay_ms * interval '1 millisecond'"
            " ELSE j.start_after END,"
            " lease_until = NULL, worker = NULL"
            " FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::text[], %s::text[],"
            " %s::text[], %s::bigint[]) AS v(name, id, token, state, output, error, delay_ms)"
            " WHERE j.name = v.name AND j.id = v.id AND j.lease_token = v.token"
            " AND j.state = 'active' RETURNING j.name, j.state)"
            " SELECT pg_notify(%s, name) FROM (SELECT DISTINCT name FROM settled"
            " WHERE state IN ('completed', 'cancelled')) AS done"
        )
        self.fail = (
            f"UPDATE {s}.job j SET state = CASE WHEN {FLAGGED} THEN 'cancelled' ELSE 'failed' END,"
            f" error = CASE WHEN {FLAGGED} THEN {cancelled_error_sql()} ELSE %s END,"
            f" completed_on = clock_timestamp(), dead_letter = CASE WHEN {FLAGGED} THEN NULL"
            " ELSE %s END, lease_until = NULL, worker = NULL"
            " WHERE name = %s AND id = %s AND lease_token = %s AND state = 'active'"
            " RETURNING j.state"
        )
        self.insert_record = f"INSERT INTO {s}.job (name, id, data) VALUES (%s, %s, %s)"
        self.notify = "SELECT pg_notify(%s, %s)"
        # Back to waiting without counting the attempt: the job never got a verdict.
        # (a job asked to stop ends cancelled instead: its worker stopped or died meanwhile)
        give_back = (
            f"state = CASE WHEN {FLAGGED} THEN 'cancelled'"
            " WHEN j.retry_count > 1 THEN 'retry' ELSE 'created' END,"
            f" retry_count = CASE WHEN {FLAGGED} THEN j.retry_count"
            " ELSE greatest(j.retry_count - 1, 0) END,"
            f" error = CASE WHEN {FLAGGED} THEN {cancelled_error_sql()} ELSE j.error END,"
            f" completed_on = CASE WHEN {FLAGGED} THEN clock_timestamp() ELSE j.completed_on END,"
            " lease_until = NULL, worker = NULL"
        )
        self.release = (
            f"UPDATE {s}.job j SET {give_back}"
            " FROM unnest(%s::text[], %s::bigint[]) AS v(id, token)"
            " WHERE j.name = %s AND j.id = v.id AND j.lease_token = v.token"
            " AND j.state = 'active'"
        )
        self.extend = (
            f"UPDATE {s}.job j SET lease_until = clock_timestamp() + %s * interval '1 millisecond'"
            " FROM unnest(%s::text[], %s::bigint[]) AS v(id, token)"
            " WHERE j.name = %s AND j.id = v.id AND j.lease_token = v.token"
            " AND j.state = 'active'"
        )
        self.expired = (
            f"SELECT id, data, retry_count, stalled_count, lease_token FROM {s}.job"
            " WHERE name = %s AND state = 'active'"
            # No lease at all (another program set the state): as good as expired.
            " AND (lease_until IS NULL OR lease_until < clock_timestamp())"
            " FOR UPDATE SKIP LOCKED"
        )
        self.stall = (
            f"UPDATE {s}.job j SET {give_back}, stalled_count = j.stalled_count + 1"
            " WHERE j.name = %s AND j.id = %s AND j.lease_token = %s AND j.state = 'active'"
        )
        # Cancelling (`CancelsJobs`, `CancelRequests`).
        self.cancel_lookup = (
            f"SELECT state, schedule_key, lease_token FROM {s}.job"
            " WHERE name = %s AND id = %s FOR UPDATE"
        )
        self.cancel_flag = (
            f"UPDATE {s}.job SET cancel_requested = lease_token"
            " WHERE name = %s AND id = %s AND state = 'active'"
        )
        self.cancel_remove = f"DELETE FROM {s}.job WHERE name = %s AND id = %s"
        self.cancel_requested = (
            f"SELECT id FROM {s}.job WHERE name = %s AND id = ANY(%s::text[])"
            " AND state = 'active' AND cancel_requested IS NOT NULL"
        )
        self.progress = (
            f"UPDATE {s}.job SET progress = %s"
            " WHERE name = %s AND id = %s AND lease_token = %s AND state = 'active'"
        )


async def insert_jobs(tx: Tx, st: Statements, jobs: Sequence[NewJob]) -> None:
    """Insert `jobs` (an existing id is left as it is) and notify the queues of those ready
    now, in one statement."""
    ready = sorted({job.queue for job in jobs if job.delay_ms <= 0})
    await tx.rows(
        st.insert_keyed if any(job.keyed for job in jobs) else st.insert,
        (
            _column([j.queue for j in jobs]),
            _column([j.id for j in jobs]),
            _column([j.data for j in jobs]),
            _column([j.priority for j in jobs]),
            _column([j.delay_ms for j in jobs]),
            _column([j.meta for j in jobs]),
            _column([j.schedule_key for j in jobs]),
            st.channel,
            ready,
        ),
    )


def _column(values: list[Any]) -> str:
    """One column of the rows to insert, as the JSON text `insert` unpacks."""
    return json.dumps(values, ensure_ascii=False, separators=(",", ":"))


async def lease_jobs(
    tx: Tx,
    st: Statements,
    queue: str,
    limit: int,
    lease_ms: int,
    worker_id: str,
    max_active: int | None,
    rate: RateLimit | None = None,
) -> list[Leased]:
    """Lease up to `limit` due jobs by priority then age, inside the `max_active` cap and the
    queue's `rate` limit (`limits`: its window counts what this lease starts). With either,
    run this in a transaction: the advisory lock and the window's row are held till it ends."""
    take = limit
    if max_active is not None:
        await tx.run("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{st.schema}:{queue}",))
        [(active,)] = await tx.rows(st.active, (queue,))
        take = min(take, max_active - int(active))
        if take <= 0:
            return []
    if rate is None:
        rows = await tx.rows(st.reserve, (lease_ms, worker_id, queue, queue, take))
    elif rate.group_key is None:
        left = await allowance(tx, st.limits, queue, [UNGROUPED], rate)
        take = min(take, left.get(UNGROUPED, 0))
        if take <= 0:
            return []
        rows = await tx.rows(st.reserve, (lease_ms, worker_id, queue, queue, take))
        await count_starts(tx, st.limits, queue, {UNGROUPED: len(rows)}, rate)
    else:
        chosen, per_group = await grouped_candidates(tx, st.limits, queue, take, rate)
        if not chosen:
            return []
        rows = await tx.rows(st.reserve_ids, (lease_ms, worker_id, queue, chosen))
        await count_starts(tx, st.limits, queue, per_group, rate)
    rows.sort(key=lambda r: (r[0], r[1]))
    leased: list[Leased] = []
    for row in rows:
        priority, _, id_, raw, attempts, enqueued_at, token, key, start_after, meta = row[:10]
        far, due_text = row[10:]
        invalid: fields.InvalidRecord | None = None
        context: dict[str, str] | None = None
        try:
            fields.integer("priority", priority, maximum=MAX_PRIORITY)
            # a lease counts the attempt: 1.. (never the top of the column, which it cannot pass)
            fields.integer("retry_count", attempts, minimum=1, maximum=MAX_INT4 - 1)
            if far:  # leased although not due: only one due too far ahead is (`FAR_FUTURE_MS`)
                raise fields.InvalidRecord(
                    "start_after", due_text, "due further ahead than any pikkugen writer sets"
                )
            context = fields.trace_context("meta", meta)
        except fields.InvalidRecord as exc:
            invalid = exc
        try:
            payload, refused = decode_payload(raw), None
        except UndecodablePayload as exc:
            # Written by something other than pikku_queue: no processor can read it. Handed
            # out all the same, so the engine dead-letters it like any invalid payload.
            payload, refused = exc.stored, exc
        leased.append(
            Leased(
                id_, payload, attempts, enqueued_at, token, key, start_after, context, refused,
                invalid,
            )
        )  # fmt: skip
    return leased


@dataclass
class Verdicts:
    """Completions and retries gathered for one `finish` statement."""

    names: list[str]
    ids: list[str]
    tokens: list[int]
    states: list[str]
    outputs: list[str | None]
    errors: list[str | None]
    delays: list[int]

    @classmethod
    def empty(cls) -> Verdicts:
        return cls([], [], [], [], [], [], [])

    def add(self, delivery: Delivery, outcome: Completed | Retry | Cancelled, token: int) -> None:
        self.names.append(delivery.queue)
        self.ids.append(delivery.job_id)
        self.tokens.append(token)
        if isinstance(outcome, Completed):
            self.states.append("completed")
            self.outputs.append(dumps(outcome.result))
            self.errors.append(None)
            self.delays.append(0)
        elif isinstance(outcome, Cancelled):
            self.states.append("cancelled")
            self.outputs.append(None)
            self.errors.append(dumps(outcome.error.as_dict()))
            self.delays.append(0)
        else:
            self.states.append("retry")
            self.outputs.append(None)
            self.errors.append(dumps(outcome.error.as_dict()))
            self.delays.append(max(outcome.delay_ms, 0))

    def __len__(self) -> int:
        return len(self.ids)

    def params(self) -> tuple[list[Any], ...]:
        return (
            self.names,
            self.ids,
            self.tokens,
            self.states,
            self.outputs,
            self.errors,
            self.delays,
        )


async def settle_all(
    tx: Tx,
    st: Statements,
    settled: Sequence[tuple[Delivery, Outcome, int, str | None]],
) -> None:
    """Apply verdicts (delivery, outcome, lease token, dead-letter queue): completions and
    retries in one statement, each failure for good with its record."""
    verdicts = Verdicts.empty()
    for delivery, outcome, token, dlq in settled:
        if isinstance(outcome, Completed | Retry | Cancelled):
            verdicts.add(delivery, outcome, token)
        else:
            await dead_letter(
                tx,
                st,
                (delivery.queue, delivery.job_id, token),
                delivery.payload,
                delivery.attempt,
                outcome,
                dlq,
                delivery.payload_encoding,
            )
    if verdicts:
        await tx.rows(st.finish, (*verdicts.params(), st.finished_channel))


async def dead_letter(
    tx: Tx,
    st: Statements,
    guard: tuple[str, str, int],
    payload: Any,
    attempts: int,
    outcome: DeadLetter,
    dead_letter_queue: str | None,
    payload_encoding: str = "json",
) -> None:
    """Finish the job as failed, and (with a dead-letter queue) write its record there.

    The record is only written if this lease still held the job, so a lost lease never
    produces a second record for the same failure; a record that fails is never
    dead-lettered again (`dead_letter_target`)."""
    dead_letter_queue = dead_letter_target(payload, dead_letter_queue)
    queue, job_id, token = guard
    touched = await tx.rows(
        st.fail, (dumps(outcome.error.as_dict()), dead_letter_queue, queue, job_id, token)
    )
    if touched:
        await tx.rows(st.notify, (st.finished_channel, queue))
    if not touched or touched[0][0] == "cancelled" or not dead_letter_queue:
        return  # the lease was lost, or the job was asked to stop: no record
    record = DeadLetterRecord(
        id=uuid.uuid4().hex,
        queue=queue,
        job_id=job_id,
        payload=payload,
        attempts=attempts,
        reason=outcome.reason,
        error=outcome.error,
        failed_at_ms=0,
        payload_encoding=payload_encoding,
    )
    [(now,)] = await tx.rows(f"SELECT {st.schema}.ms(clock_timestamp())")
    data = record.as_payload() | {"failed_at_ms": int(now)}
    await tx.run(st.insert_record, (dead_letter_queue, record.id, dumps(data)))
    await tx.rows(st.notify, (st.channel, dead_letter_queue))


async def cancel(tx: Tx, st: Statements, queue: str, job_id: str) -> CancelResult:
    """Remove a waiting or delayed job, or flag a running one (`CancelsJobs.cancel_job`),
    the row locked meanwhile so no lease takes it in between. Run in a transaction."""
    rows = await tx.rows(st.cancel_lookup, (queue, job_id))
    if not rows:
        return CancelResult.NOT_FOUND
    state, schedule_key, _ = rows[0]
    if state == "active":
        await tx.run(st.cancel_flag, (queue, job_id))
        return CancelResult.REQUESTED
    if state not in ("created", "retry"):
        return CancelResult.FINISHED
    if schedule_key is not None:  # a schedule's pending run: its lease adds the next one
        return CancelResult.SCHEDULED
    await tx.run(st.cancel_remove, (queue, job_id))
    return CancelResult.REMOVED


async def recover_expired(
    tx: Tx, st: Statements, queue: str, max_stalled_count: int, dead_letter_queue: str | None
) -> list[str]:
    """Put back every job whose lease expired (its worker died or blocked); past
    `max_stalled_count` expiries the job fails as `stalled` instead (into the dead-letter
    queue when given). Run in a transaction: the rows stay locked until it commits."""
    recovered: list[str] = []
    for job_id, raw, attempts, stalls, token in await tx.rows(st.expired, (queue,)):
        if stalls + 1 <= max_stalled_count:
            await tx.run(st.stall, (queue, job_id, token))
        else:
            try:
                payload, encoding = decode_payload(raw), "json"
            except UndecodablePayload as exc:
                payload, encoding = exc.stored, exc.encoding
            error = stalled_error(stalls + 1, max_stalled_count)
            await dead_letter(
                tx,
                st,
                (queue, job_id, token),
                payload,
                attempts,
                DeadLetter("stalled", error),
                dead_letter_queue,
                encoding,
            )
        recovered.append(str(job_id))
    return recovered
