"""Rate limits and deduplication in the SQLite file, so every process that opens it shares
them (memory:// runs the same code on its private database).

The rules are BullMQ's, which the Redis backend uses, so a queue behaves alike on both:

* A rate limit is a window per queue (and per group, with `RateLimit.group_key`): it opens at
  the first start after the previous window ended and lasts `per_ms`; a lease takes no more
  jobs than the window has starts left (`rate_windows`). The count and the lease are one
  write transaction, so two processes cannot both take the last start.
* A deduplication key (`dedupe_keys`) names the job it let in and when its window ends; an
  enqueue within the window drops the new job, replaces the earlier one while it is still
  delayed (`replace`), or drops it and restarts the window, pushing a still-delayed earlier
  job's due time back (`extend`). See `pikku_queue.options.Dedupe`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from pikku_queue.options import Dedupe, RateLimit

#: The window of a queue without `group_key`.
UNGROUPED = ""
#: Waiting jobs a grouped lease looks at per job it may take (groups at their limit are
#: passed over, so it looks further than `limit`).
GROUP_LOOKAHEAD = 8


def group_of(value: Any) -> str:
    """A group's window name for the value its payload holds in `group_key` (as SQLite's
    json_extract returns it): text as is, anything else as JSON."""
    if isinstance(value, str):
        return "g:" + value
    return "g:" + json.dumps(value)


def allowance(conn: sqlite3.Connection, queue: str, group: str, rate: RateLimit, now: int) -> int:
    """How many more jobs of `queue` (`group`) may start in the current window."""
    row = conn.execute(
        "SELECT ends_at, starts FROM rate_windows WHERE queue = ? AND grp = ?", (queue, group)
    ).fetchone()
    if row is None or not isinstance(row[0], int) or row[0] <= now:
        return rate.max
    starts = row[1] if isinstance(row[1], int) else rate.max
    return max(rate.max - starts, 0)


def count_starts(
    conn: sqlite3.Connection, queue: str, group: str, started: int, rate: RateLimit, now: int
) -> None:
    """Count `started` jobs in the window of `queue` (`group`), opening one if none is open."""
    if started <= 0:
        return
    conn.execute(
        "INSERT INTO rate_windows (queue, grp, ends_at, starts) VALUES (?1, ?2, ?3, ?4)"
        " ON CONFLICT (queue, grp) DO UPDATE SET"
        " starts = CASE WHEN ends_at > ?5 THEN starts + ?4 ELSE ?4 END,"
        " ends_at = CASE WHEN ends_at > ?5 THEN ends_at ELSE ?3 END",
        (queue, group, now + rate.per_ms, started, now),
    )


def window_end(conn: sqlite3.Connection, queue: str, now: int) -> int | None:
    """When the earliest open window of `queue` ends (an idle worker waits till then)."""
    found = conn.execute(
        "SELECT min(ends_at) FROM rate_windows WHERE queue = ? AND ends_at > ?", (queue, now)
    ).fetchone()[0]
    return int(found) if isinstance(found, int) else None


def grouped_candidates(
    conn: sqlite3.Connection, queue: str, take: int, rate: RateLimit, now: int
) -> tuple[list[int], dict[str, int]]:
    """The waiting jobs (by priority, then age) a grouped lease may take, at most `take`,
    none past its group's window; and how many of each group that is."""
    assert rate.group_key is not None
    path = "$." + rate.group_key
    rows = conn.execute(
        "SELECT seq, CASE WHEN json_valid(payload) THEN json_extract(payload, ?) END"
        " FROM jobs WHERE queue = ? AND state = 'waiting' ORDER BY priority, seq LIMIT ?",
        (path, queue, take * GROUP_LOOKAHEAD),
    ).fetchall()
    left: dict[str, int] = {}
    chosen: list[int] = []
    per_group: dict[str, int] = {}
    for seq, value in rows:
        group = group_of(value)
        if group not in left:
            left[group] = allowance(conn, queue, group, rate, now)
        if left[group] <= 0:
            continue
        left[group] -= 1
        per_group[group] = per_group.get(group, 0) + 1
        chosen.append(int(seq))
        if len(chosen) >= take:
            break
    return chosen, per_group


# --------------------------------------------------------------------------- deduplication


def deduplicate(
    conn: sqlite3.Connection,
    queue: str,
    key: str,
    dedupe: Dedupe,
    job_id: str,
    delay_ms: int,
    insert: Sequence[Any],
    now: int,
) -> str:
    """Store the job `insert` (a row for `INSERT_JOB`) unless `key` is taken within its
    window; the id its handle points to."""
    conn.execute(
        "DELETE FROM dedupe_keys WHERE queue = ? AND expires_at <= ? AND key != ?",
        (queue, now, key),
    )
    row = conn.execute(
        "SELECT job_id, expires_at FROM dedupe_keys WHERE queue = ? AND key = ?", (queue, key)
    ).fetchone()
    expires = now + dedupe.ttl_ms
    if row is not None and isinstance(row[1], int) and row[1] > now:
        earlier = str(row[0])
        delayed = conn.execute(
            "SELECT 1 FROM jobs WHERE queue = ? AND id = ? AND state = 'delayed'",
            (queue, earlier),
        ).fetchone()
        if dedupe.mode == "extend":
            conn.execute(
                "UPDATE dedupe_keys SET expires_at = ? WHERE queue = ? AND key = ?",
                (expires, queue, key),
            )
            if delayed is not None and delay_ms > 0:
                conn.execute(
                    "UPDATE jobs SET run_at = ? WHERE queue = ? AND id = ? AND state = 'delayed'",
                    (now + delay_ms, queue, earlier),
                )
            return earlier
        if dedupe.mode == "replace" and delayed is not None and earlier != job_id:
            conn.execute(
                "DELETE FROM jobs WHERE queue = ? AND id = ? AND state = 'delayed'",
                (queue, earlier),
            )
            conn.execute(INSERT_JOB, insert)
            conn.execute(
                "UPDATE dedupe_keys SET job_id = ?, expires_at = ? WHERE queue = ? AND key = ?",
                (job_id, expires, queue, key),
            )
            return job_id
        return earlier
    conn.execute(INSERT_JOB, insert)
    conn.execute(
        "INSERT INTO dedupe_keys (queue, key, job_id, expires_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (queue, key) DO UPDATE SET job_id = excluded.job_id,"
        " expires_at = excluded.expires_at",
        (queue, key, job_id, expires),
    )
    return job_id


#: One job's row (the columns `SqliteBackend.enqueue_many` fills); an existing id is kept.
INSERT_JOB = (
    "INSERT INTO jobs (queue, id, state, priority, run_at, payload, enqueued_at, meta)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (queue, id) DO NOTHING"
)
