"""Rate limits and deduplication in the PostgreSQL schema, so every process on the database
shares them. The rules are SQLite's (`pikku_queue.adapters.sqlite.limits`), which are BullMQ's:

* A rate limit is a window per queue (and per group, with `RateLimit.group_key`) in
  `rate_window`: it opens at the first start after the previous window ended and lasts
  `per_ms`. The lease locks the window's row first (`INSERT … ON CONFLICT DO UPDATE`), takes no
  more jobs than the window has starts left, and counts what it took before it commits: two
  workers, in any process, cannot both take the last start. Grouped leases lock their groups'
  rows in one statement, sorted, so two leases never wait on each other in a circle.
* A deduplication key (`dedupe_key`) names the job it let in and when its window ends. The
  enqueue locks the key's row the same way (a second producer with the same key waits for the
  first one's commit, then sees its job), then drops the new job, replaces a still-delayed
  earlier one (`replace`), or drops it and restarts the window, pushing a still-delayed
  earlier job's due time back (`extend`).

Every stored value is read totally: a window whose end is further ahead than its limit's
`per_ms`, a key further ahead than `MAX_WINDOW_MS` (no pikkugen writer sets either), or a
negative start count, is ignored; a count at the top of its type is capped before it grows:
nothing a row holds raises out of a lease or an enqueue.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pikku_queue.adapters.postgresql.connections import Tx
from pikku_queue.adapters.sqlite.limits import GROUP_LOOKAHEAD, UNGROUPED, group_of
from pikku_queue.options import MAX_WINDOW_MS, Dedupe, RateLimit

__all__ = [
    "UNGROUPED",
    "LimitStatements",
    "allowance",
    "count_starts",
    "deduplicate",
    "free_keys",
    "grouped_candidates",
    "window_end",
]

#: How many expired keys of a queue one deduplicating enqueue deletes on its way.
EXPIRED_CHUNK = 100


def _open(column: str, span_ms: str) -> str:
    """`column` (a window's end) is still ahead, and not further ahead than `span_ms`."""
    return (
        f"({column} > clock_timestamp() AND {column} <= clock_timestamp()"
        f" + {span_ms} * interval '1 millisecond')"
    )


class LimitStatements:
    """The limits' statements of one schema, formatted once."""

    def __init__(self, s: str, ready: str, due: str) -> None:
        window_open = _open("w.ends_at", "%(per_ms)s::bigint")
        self.allowance = (
            f"INSERT INTO {s}.rate_window AS w (name, grp, ends_at, starts)"
            " SELECT %(queue)s, g, '-infinity', 0 FROM unnest(%(groups)s::text[]) AS g ORDER BY g"
            " ON CONFLICT (name, grp) DO UPDATE SET starts = w.starts"
            f" RETURNING w.grp, CASE WHEN {window_open}"
            " THEN greatest(%(max)s - greatest(w.starts, 0), 0) ELSE %(max)s END"
        )
        self.count = (
            f"UPDATE {s}.rate_window AS w SET"
            f" starts = CASE WHEN {window_open} THEN least(greatest(w.starts, 0), %(max)s) + v.n"
            " ELSE v.n END,"
            f" ends_at = CASE WHEN {window_open} THEN w.ends_at"
            " ELSE clock_timestamp() + %(per_ms)s::bigint * interval '1 millisecond' END"
            " FROM unnest(%(groups)s::text[], %(counts)s::int[]) AS v(grp, n)"
            " WHERE w.name = %(queue)s AND w.grp = v.grp"
        )
        self.window_end = (
            f"SELECT {s}.ms(min(ends_at)), min(ends_at) IS NULL FROM {s}.rate_window"
            " WHERE name = ANY(%s::text[])"
            f" AND {_open('ends_at', str(MAX_WINDOW_MS))}"
        )
        self.candidates = (
            f"SELECT id, data FROM {s}.job WHERE name = %s AND state IN {ready} AND {due}"
            f" AND NOT EXISTS (SELECT 1 FROM {s}.paused WHERE paused.name = %s)"
            " ORDER BY priority, seq LIMIT %s FOR UPDATE SKIP LOCKED"
        )
        key_live = _open("d.expires_at", str(MAX_WINDOW_MS))
        self.expired_keys = (
            f"DELETE FROM {s}.dedupe_key WHERE (name, key) IN (SELECT name, key"
            f" FROM {s}.dedupe_key WHERE name = %s AND expires_at <= clock_timestamp()"
            f" AND key <> %s LIMIT {EXPIRED_CHUNK} FOR UPDATE SKIP LOCKED)"
        )
        self.claim = (
            f"INSERT INTO {s}.dedupe_key AS d (name, key, job_id, expires_at)"
            " VALUES (%s, %s, %s, '-infinity')"
            " ON CONFLICT (name, key) DO UPDATE SET job_id = d.job_id"
            f" RETURNING d.job_id, {key_live}"
        )
        self.delayed = (
            f"SELECT 1 FROM {s}.job WHERE name = %s AND id = %s AND state IN {ready}"
            " AND start_after > clock_timestamp() FOR UPDATE"
        )
        self.set_key = (
            f"UPDATE {s}.dedupe_key SET job_id = %s,"
            " expires_at = clock_timestamp() + %s * interval '1 millisecond'"
            " WHERE name = %s AND key = %s"
        )
        self.push_back = (
            f"UPDATE {s}.job SET start_after = clock_timestamp() + %s * interval '1 millisecond'"
            f" WHERE name = %s AND id = %s AND state IN {ready}"
            " AND start_after > clock_timestamp()"
        )
        self.drop_job = f"DELETE FROM {s}.job WHERE name = %s AND id = %s"
        self.free_keys = f"DELETE FROM {s}.dedupe_key WHERE name = %s AND job_id = %s"


# --------------------------------------------------------------------------- rate limits


def _params(queue: str, rate: RateLimit, groups: Sequence[str]) -> dict[str, Any]:
    return {"queue": queue, "groups": list(groups), "max": rate.max, "per_ms": rate.per_ms}


async def allowance(
    tx: Tx, st: LimitStatements, queue: str, groups: Sequence[str], rate: RateLimit
) -> dict[str, int]:
    """How many more jobs of each group of `queue` may start in its current window; the
    windows' rows stay locked until the transaction ends."""
    rows = await tx.rows(st.allowance, _params(queue, rate, sorted(set(groups))))
    return {str(group): int(left) for group, left in rows}


async def count_starts(
    tx: Tx, st: LimitStatements, queue: str, started: Mapping[str, int], rate: RateLimit
) -> None:
    """Count the jobs started per group (rows `allowance` locked), opening a window where
    none is open."""
    counted = {group: n for group, n in started.items() if n > 0}
    if counted:
        params = _params(queue, rate, list(counted)) | {"counts": list(counted.values())}
        await tx.run(st.count, params)


def group_value(data: Any, key: str) -> Any:
    """The value a stored payload (JSON text) holds in `key`; None if it holds none or is no
    JSON object at all (such a job is grouped with the others that have none)."""
    if not isinstance(data, str):
        return None
    try:
        payload = json.loads(data)
    except ValueError:
        return None
    return payload.get(key) if isinstance(payload, dict) else None


async def grouped_candidates(
    tx: Tx, st: LimitStatements, queue: str, take: int, rate: RateLimit
) -> tuple[list[str], dict[str, int]]:
    """The due jobs (by priority, then age) a grouped lease may take, at most `take`, none
    past its group's window (rows locked); and how many of each group that is."""
    assert rate.group_key is not None
    rows = await tx.rows(st.candidates, (queue, queue, take * GROUP_LOOKAHEAD))
    if not rows:
        return [], {}
    groups = [(str(job_id), group_of(group_value(data, rate.group_key))) for job_id, data in rows]
    left = await allowance(tx, st, queue, [g for _, g in groups], rate)
    chosen: list[str] = []
    per_group: dict[str, int] = {}
    for job_id, group in groups:
        if left.get(group, 0) <= 0:
            continue
        left[group] -= 1
        per_group[group] = per_group.get(group, 0) + 1
        chosen.append(job_id)
        if len(chosen) >= take:
            break
    return chosen, per_group


async def window_end(tx: Tx, st: LimitStatements, queues: Sequence[str]) -> int | None:
    """When the earliest open window of these queues ends (an idle worker waits till then)."""
    if not queues:
        return None
    [(found, none)] = await tx.rows(st.window_end, (list(queues),))
    return None if none else int(found)


# --------------------------------------------------------------------------- deduplication


async def deduplicate(
    tx: Tx,
    st: LimitStatements,
    queue: str,
    key: str,
    dedupe: Dedupe,
    job_id: str,
    delay_ms: int,
    insert: Any,
) -> str:
    """Store the job (`insert()`, awaited) unless `key` is taken within its window; the id its
    handle points to. Run in a transaction: the key's row is locked from the claim on."""
    await tx.run(st.expired_keys, (queue, key))
    [(earlier, live)] = await tx.rows(st.claim, (queue, key, job_id))
    if live:
        earlier = str(earlier)
        delayed = bool(await tx.rows(st.delayed, (queue, earlier)))
        if dedupe.mode == "extend":
            await tx.run(st.set_key, (earlier, dedupe.ttl_ms, queue, key))
            if delayed and delay_ms > 0:
                await tx.run(st.push_back, (delay_ms, queue, earlier))
            return earlier
        if dedupe.mode == "replace" and delayed and earlier != job_id:
            await tx.run(st.drop_job, (queue, earlier))
            await insert()
            await tx.run(st.set_key, (job_id, dedupe.ttl_ms, queue, key))
            return job_id
        return earlier
    await insert()
    await tx.run(st.set_key, (job_id, dedupe.ttl_ms, queue, key))
    return job_id


async def free_keys(tx: Tx, st: LimitStatements, queue: str, job_id: str) -> None:
    """A removed job's keys are free again (as BullMQ's removeJob drops its `de:` key)."""
    await tx.run(st.free_keys, (queue, job_id))
