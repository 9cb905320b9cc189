"""The SQLite backend's job lists (`list_jobs`, the monitor's pages) and dead-letter listing,
against the same rows selected the plain way: every page walked through its cursors."""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pikku_queue.adapters.sqlite.backend import SqliteBackend
from pikku_queue.clock import VirtualClock
from pikku_queue.records import EnqueueRequest, JobState

Q = "orders"


def expected(path: Path, state: JobState, now: int) -> list[str]:
    """The ids a walk of `state`'s pages must give, newest first (a due delayed job waits)."""
    where = {
        JobState.WAITING: "state = 'waiting' OR (state = 'delayed' AND run_at <= ?1)",
        JobState.DELAYED: "state = 'delayed' AND run_at > ?1",
    }[state]
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            f"SELECT id FROM jobs WHERE queue = ?2 AND ({where}) ORDER BY seq DESC", (now, Q)
        ).fetchall()
    return [i for (i,) in rows]


async def walk(backend: SqliteBackend, state: JobState, limit: int) -> list[str]:
    ids: list[str] = []
    cursor: str | None = None
    for _ in range(1_000):
        page = await backend.list_jobs(Q, state, limit, cursor)
        ids += [job.id for job in page.jobs]
        if page.next_cursor is None:
            return ids
        cursor = page.next_cursor
    raise AssertionError("the pages never ended")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    delays=st.lists(st.sampled_from([0, 1_000, 5_000, 60_000]), min_size=0, max_size=40),
    elapsed=st.sampled_from(
        [0, 1_000, 2_000, 5_000, 10_000, 60_000, 120_000]
    ),  # due at exactly now too
    limit=st.integers(1, 7),
)
def test_every_page_of_waiting_and_delayed_walks_the_plain_selection(
    delays: list[int], elapsed: int, limit: int
) -> None:
    async def check(path: Path) -> None:
        clock = VirtualClock(1_000_000_000)
        backend = SqliteBackend(path, clock=clock)
        try:
            await backend.enqueue_many(
                [
                    EnqueueRequest(Q, {"n": n}, job_id=f"j{n}", delay_ms=d)
                    for n, d in enumerate(delays)
                ]
            )
            clock.advance(elapsed)
            now = clock.now_ms()
            for state in (JobState.WAITING, JobState.DELAYED):
                assert await walk(backend, state, limit) == expected(path, state, now)
        finally:
            await backend.close()

    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(check(Path(folder) / "q.db"))


def test_dead_letters_lists_the_oldest_waiting_and_delayed_records_first(tmp_path: Path) -> None:
    async def check() -> list[str]:
        backend = SqliteBackend(tmp_path / "q.db")
        try:
            record = {"queue": Q, "payload": {}, "attempts": 1, "reason": "attempts_exhausted",
                      "error": {"type": "E", "message": "m"}, "failed_at_ms": 0}  # fmt: skip
            await backend.enqueue_many(
                [
                    EnqueueRequest(
                        "dlq",
                        {**record, "job_id": f"j{n}"},
                        job_id=f"r{n}",
                        delay_ms=60_000 if n % 3 == 0 else 0,
                    )
                    for n in range(10)
                ]
            )
            return [r.id for r in await backend.dead_letters("dlq", 4)]
        finally:
            await backend.close()

    assert asyncio.run(check()) == ["r0", "r1", "r2", "r3"]
