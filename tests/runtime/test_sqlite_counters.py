"""The SQLite backend's per-state counts (`job_counts`, kept by triggers) against a recount.

Every way a row changes state is driven here on a real file, by hypothesis (enqueue, delay,
schedules, lease, each verdict, release, stall recovery, retry, remove, promote, clean,
retention, replay, a foreign program's SQL), and after each step the stored counts must equal
`SELECT queue, state, count(*) ... GROUP BY`, and `Backend.counts` must equal the same figures
counted row by row as the backend counted them before the triggers. Then worker processes
share one file and one is SIGKILLed mid-run, and an old file (no triggers) is migrated.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pikku_queue.adapters.sqlite.backend import SqliteBackend
from pikku_queue.adapters.sqlite.counters import TRIGGERS, recount
from pikku_queue.clock import VirtualClock
from pikku_queue.options import Repeat
from pikku_queue.outcomes import Completed, DeadLetter, Delivery, ErrorInfo, Retry
from pikku_queue.records import EnqueueRequest, JobState, QueueCounts

Q, DLQ = "orders", "orders-dlq"
BOOM = ErrorInfo("RuntimeError", "boom")


def recounted(path: Path) -> dict[tuple[str, str], int]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT queue, state, count(*) FROM jobs GROUP BY queue, state")
        return {(q, s): n for q, s, n in rows}


def stored(path: Path) -> dict[tuple[str, str], int]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT queue, state, n FROM job_counts").fetchall()
    assert all(n >= 0 for _, _, n in rows), rows
    return {(q, s): n for q, s, n in rows if n}


def counted_by_scan(path: Path, queue: str, now: int) -> QueueCounts:
    """`Backend.counts` as the backend computed it before the triggers: a count per state."""
    with sqlite3.connect(path) as conn:

        def one(where: str, *args: Any) -> int:
            sql = f"SELECT count(*) FROM jobs WHERE queue = ? AND {where}"
            return int(conn.execute(sql, (queue, *args)).fetchone()[0])

        return QueueCounts(
            waiting=one("state = 'waiting'") + one("state = 'delayed' AND run_at <= ?", now),
            active=one("state = 'active'"),
            delayed=one("state = 'delayed' AND run_at > ?", now),
            completed=one("state = 'completed'"),
            failed=one("state = 'failed'"),
            dead_lettered=one("state = 'dead_lettered'"),
            scheduled=one("state = 'delayed' AND run_at > ? AND schedule IS NOT NULL", now),
        )


def pending_by_scan(path: Path, queue: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(
            conn.execute(
                "SELECT count(*) FROM jobs WHERE queue = ? AND (state IN ('waiting', 'active')"
                " OR (state = 'delayed' AND schedule IS NULL))",
                (queue,),
            ).fetchone()[0]
        )


ACTIONS = [
    "release",
    "recover",
    "retry",
    "remove",
    "promote",
    "clean",
    "prune",
    "replay",
    "pause",
    "foreign",
    "bad_group",
]
STEP = st.one_of(
    st.tuples(st.just("enqueue"), st.integers(1, 4), st.sampled_from([0, 0, 1_000, 60_000])),
    st.tuples(st.just("schedule"), st.sampled_from([1_000, 5_000])),
    st.tuples(st.just("lease"), st.integers(1, 4)),
    st.tuples(
        st.just("settle"),
        st.sampled_from(["complete", "retry_now", "retry_later", "dead_letter", "fail"]),
    ),
    st.tuples(st.just("advance"), st.sampled_from([500, 2_000, 40_000])),
    st.tuples(st.sampled_from(ACTIONS)),
)


async def play(path: Path, steps: list[tuple[Any, ...]]) -> None:
    clock = VirtualClock(1_000_000_000)
    backend = SqliteBackend(path, clock=clock, remove_on_complete=3, remove_on_fail=2)
    held: list[Delivery] = []
    made = 0
    try:
        for step in steps:
            kind = step[0]
            if kind == "enqueue":
                requests = [
                    EnqueueRequest(Q, {"n": made + i}, job_id=f"j{made + i}", delay_ms=step[2])
                    for i in range(step[1])
                ]
                made += step[1]
                await backend.enqueue_many(requests)
            elif kind == "schedule":
                await backend.enqueue(EnqueueRequest(Q, {}, repeat=Repeat(every=step[1])))
            elif kind == "lease":
                held += await backend.reserve(Q, step[1], 10_000, "w", max_active=5)
            elif kind == "settle" and held:
                delivery = held.pop(0)
                outcome = {
                    "complete": Completed("ok"),
                    "retry_now": Retry(0, BOOM),
                    "retry_later": Retry(3_000, BOOM),
                    "dead_letter": DeadLetter("attempts_exhausted", BOOM),
                    "fail": DeadLetter("attempts_exhausted", BOOM),
                }[step[1]]
                await backend.settle(delivery, outcome, None if step[1] == "fail" else DLQ)
            elif kind == "advance":
                clock.advance(step[1])
            elif kind == "release" and held:
                await backend.release(Q, [held.pop().job_id])
            elif kind == "recover":
                await backend.recover_stalled(Q, 1, DLQ)
            elif kind in ("retry", "remove", "promote"):
                state = {"retry": JobState.FAILED, "remove": JobState.WAITING}.get(
                    kind, JobState.DELAYED
                )
                page = await backend.list_jobs(Q, state, 1)
                for job in page.jobs:
                    action = {
                        "retry": backend.retry_job,
                        "remove": backend.remove_job,
                        "promote": backend.promote_job,
                    }[kind]
                    await action(Q, job.id)  # a schedule's next run is not removed
            elif kind == "clean":
                await backend.clean_jobs(Q, JobState.COMPLETED)
                await backend.clean_jobs(Q, JobState.FAILED)
            elif kind == "prune":
                await backend.prune(Q)
            elif kind == "replay":
                await backend.replay(DLQ)
            elif kind == "pause":
                await backend.pause_queue(Q)
                assert await backend.pending_count(Q) == 0
                await backend.resume_queue(Q)
            elif kind == "foreign":  # another program's SQL: the triggers live in the file
                with sqlite3.connect(path) as other:
                    other.execute(
                        "INSERT INTO jobs (queue, id, state, run_at, payload, enqueued_at)"
                        " VALUES ('elsewhere', ?, 'waiting', 0, '{}', 0)",
                        (f"f{made}",),
                    )
                    other.execute("UPDATE jobs SET state = 'odd' WHERE queue = 'elsewhere'")
                    other.execute(
                        "DELETE FROM jobs WHERE seq = (SELECT min(seq) FROM jobs"
                        " WHERE queue = 'elsewhere')"
                    )
                    other.execute("UPDATE jobs SET queue = 'moved' WHERE queue = 'elsewhere'")
                made += 1
            elif kind == "bad_group":  # a write that fails rolls back, counts with it

                def bad(conn: sqlite3.Connection) -> None:
                    conn.execute(
                        "INSERT INTO jobs (queue, id, state, run_at, payload, enqueued_at)"
                        " VALUES (?, 'doomed', 'waiting', 0, '{}', 0)",
                        (Q,),
                    )
                    conn.execute("UPDATE jobs SET state = 'completed' WHERE queue = ?", (Q,))
                    raise RuntimeError("rolled back")

                with pytest.raises(RuntimeError):
                    await backend._db.write(bad)
            assert stored(path) == recounted(path), step
            now = clock.now_ms()
            for queue in (Q, DLQ):
                assert await backend.counts(queue) == counted_by_scan(path, queue, now), step
                assert await backend.pending_count(queue) == pending_by_scan(path, queue), step
                assert await backend.active_count(queue) == counted_by_scan(path, queue, now).active
    finally:
        await backend.close()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)  # fmt: skip
@given(st.lists(STEP, min_size=1, max_size=40))
def test_stored_counts_equal_a_recount_after_every_kind_of_write(
    steps: list[tuple[Any, ...]],
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(play(Path(folder) / "q.db", steps))


def test_the_steps_reach_every_state(tmp_path: Path) -> None:
    """The hypothesis test is only as good as the states its steps reach: one fixed run of
    them ends with a job in each."""
    steps: list[tuple[Any, ...]] = [
        ("enqueue", 4, 0), ("enqueue", 1, 60_000), ("schedule", 5_000), ("lease", 4),
        ("settle", "complete"), ("settle", "dead_letter"), ("settle", "fail"),
    ]  # fmt: skip
    asyncio.run(play(tmp_path / "q.db", steps))
    found = {state for (queue, state) in stored(tmp_path / "q.db") if queue == Q}
    assert found == {"waiting", "delayed", "active", "completed", "failed", "dead_lettered"}


def test_an_old_file_without_counters_is_counted_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    asyncio.run(SqliteBackend(path).close())
    with sqlite3.connect(path) as conn:  # as a version before the counters left it
        for name in TRIGGERS:
            conn.execute(f"DROP TRIGGER {name}")
        conn.execute("DROP TABLE job_counts")
        conn.executemany(
            "INSERT INTO jobs (queue, id, state, run_at, payload, enqueued_at)"
            " VALUES (?, ?, ?, 0, '{}', 0)",
            [(Q, f"j{n}", ("waiting", "completed", "failed")[n % 3]) for n in range(300)],
        )

    async def reopen() -> QueueCounts:
        backend = SqliteBackend(path)
        try:
            await backend.enqueue(EnqueueRequest(Q, {"n": 1}))  # counted by the new triggers
            return await backend.counts(Q)
        finally:
            await backend.close()

    assert asyncio.run(reopen()) == QueueCounts(waiting=101, completed=100, failed=100)
    assert stored(path) == recounted(path)


def test_a_replace_no_trigger_sees_is_repaired_by_recount(tmp_path: Path) -> None:
    """The one write the triggers miss (documented in `sqlite.counters`), and its repair."""
    path = tmp_path / "q.db"
    asyncio.run(SqliteBackend(path).close())
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO jobs (queue, id, state, run_at, payload, enqueued_at)"
            " VALUES (?, 'a', 'waiting', 0, '{}', 0)",
            (Q,),
        )
        conn.execute(
            "REPLACE INTO jobs (queue, id, state, run_at, payload, enqueued_at)"
            " VALUES (?, 'a', 'completed', 0, '{}', 0)",
            (Q,),
        )
    assert stored(path) != recounted(path)  # the waiting row's delete fired no trigger
    with sqlite3.connect(path) as conn:
        recount(conn)
    assert stored(path) == recounted(path) == {(Q, "completed"): 1}


CHILD = """
import asyncio, random, sys
from pikku_queue.adapters.sqlite.backend import SqliteBackend
from pikku_queue.outcomes import Completed, DeadLetter, ErrorInfo, Retry
from pikku_queue.records import EnqueueRequest, JobState

async def main(path, name):
    backend = SqliteBackend(path, remove_on_complete=200, remove_on_fail=50)
    boom = ErrorInfo("RuntimeError", "boom")
    rng = random.Random(name)
    n = 0
    print("started", flush=True)
    while True:
        await backend.enqueue_many(
            [EnqueueRequest("orders", {"n": n + i}, delay_ms=rng.choice([0, 0, 20]))
             for i in range(10)])
        n += 10
        leased = await backend.reserve("orders", 8, 300, name)
        await asyncio.sleep(0.005)  # "running": a kill now leaves them active
        await backend.recover_stalled("orders", 2, "orders-dlq")
        outcomes = [rng.choice([Completed(1), Retry(0, boom), Retry(15, boom),
                                DeadLetter("attempts_exhausted", boom)]) for _ in leased]
        await asyncio.gather(*(
            backend.settle(d, o, rng.choice(["orders-dlq", None]))
            for d, o in zip(leased, outcomes)))
        if rng.random() < 0.1:
            await backend.replay("orders-dlq")
        if rng.random() < 0.05:
            await backend.clean_jobs("orders", JobState.FAILED)

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


@pytest.mark.slow
def test_counts_stay_exact_when_worker_processes_share_a_file_and_one_is_killed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "shared.db"
    asyncio.run(SqliteBackend(path).close())
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    children = [
        subprocess.Popen(
            [sys.executable, str(script), str(path), f"w{i}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(3)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "started", child.stderr
        time.sleep(3)
        # SIGKILL in the middle of its writes: a transaction it had open commits nothing,
        # its leased jobs stay active until their leases expire
        os.kill(children[0].pid, signal.SIGKILL)
        time.sleep(2)
        for child in children[1:]:
            assert child.poll() is None, child.communicate()
            child.send_signal(signal.SIGKILL)
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
            child.communicate(timeout=60)
    assert children[0].returncode == -signal.SIGKILL
    counts = stored(path)
    assert counts == recounted(path)
    assert counts[(Q, "completed")] > 0 and counts[(DLQ, "waiting")] > 0

    async def recover() -> None:
        backend = SqliteBackend(path)
        try:
            await asyncio.sleep(0.4)  # past every lease (300 ms)
            await backend.recover_stalled(Q, 2, DLQ)
        finally:
            await backend.close()

    asyncio.run(recover())
    assert stored(path) == recounted(path)
    assert (Q, "active") not in stored(path)
