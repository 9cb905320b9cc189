"""SQLite specifics: several connections on one file, indexes, URLs, durability."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
from pikku_queue.adapters import connect
from pikku_queue.adapters.sqlite.backend import SqliteBackend, path_from_url
from pikku_queue.backend import WorkerOptions
from pikku_queue.errors import BackendError, PayloadValidationError
from pikku_queue.options import ProcessorOptions
from pikku_queue.processor import Processor
from pikku_queue.records import EnqueueRequest, JobState


async def _two_workers(
    db: Path, options: ProcessorOptions, jobs: int
) -> tuple[Counter[int], int, list[int]]:
    """Two backends (two connections, two threads) working one file; returns runs per job, the
    peak of jobs running at once, and each worker's completed count."""
    first, second = SqliteBackend(db), SqliteBackend(db)
    await first.enqueue_many([EnqueueRequest("shared", n) for n in range(jobs)])
    runs: Counter[int] = Counter()
    active = peak = 0

    async def work(data: int) -> int:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        runs[data] += 1
        await asyncio.sleep(0.002)
        active -= 1
        return data

    processor = Processor.from_function("shared", work, options)
    reports = await asyncio.gather(
        first.run_worker(WorkerOptions(processors=[processor], burst=True)),
        second.run_worker(WorkerOptions(processors=[processor], burst=True)),
    )
    assert (await second.counts("shared")).completed == jobs
    await first.close()
    await second.close()
    return runs, peak, [r.completed for r in reports]


async def test_two_backends_on_one_file_never_share_a_job(tmp_path: Path) -> None:
    runs, _, completed = await _two_workers(tmp_path / "q.db", ProcessorOptions(concurrency=5), 400)
    assert runs == Counter(range(400))  # each job exactly once
    assert all(n > 0 for n in completed)  # both workers took part
    assert sum(completed) == 400


async def test_max_concurrency_holds_across_connections(tmp_path: Path) -> None:
    options = ProcessorOptions(concurrency=10, max_concurrency=3)
    runs, peak, _ = await _two_workers(tmp_path / "q.db", options, 100)
    assert runs == Counter(range(100))
    assert peak <= 3


async def test_jobs_survive_closing_and_reopening(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    backend = SqliteBackend(db)
    job = await backend.enqueue(EnqueueRequest("durable", {"a": 1}, priority=2))
    await backend.close()
    reopened = connect(f"sqlite:///{db}")
    info = await reopened.get_job("durable", job)
    assert info is not None and info.state == JobState.WAITING and info.payload == {"a": 1}
    await reopened.close()


def _plan(db: Path, sql: str, *args: object) -> str:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("EXPLAIN QUERY PLAN " + sql, args).fetchall()
    return " | ".join(str(r[-1]) for r in rows)


async def test_polling_queries_use_their_partial_indexes(tmp_path: Path) -> None:
    # What keeps leasing cheap with 100k jobs waiting: no query below scans the table.
    db = tmp_path / "q.db"
    await SqliteBackend(db).close()
    ready = _plan(
        db,
        "SELECT seq FROM jobs WHERE queue = ? AND state = 'waiting' ORDER BY priority, seq LIMIT 5",
        "q",
    )
    assert "INDEX jobs_ready (queue=?)" in ready and "TEMP B-TREE" not in ready
    due = _plan(
        db,
        "SELECT count(*) FROM jobs WHERE queue = ? AND state = 'delayed' AND run_at <= ?",
        "q",
        0,
    )
    assert "jobs_delayed" in due
    expired = _plan(
        db,
        "SELECT id FROM jobs WHERE queue = ? AND state = 'active' AND lease_until < ?",
        "q",
        0,
    )
    assert "jobs_active" in expired


def test_url_paths() -> None:
    assert path_from_url("sqlite:///.pikku/queue.db") == ".pikku/queue.db"
    assert path_from_url("sqlite:////var/lib/q.db") == "/var/lib/q.db"
    with pytest.raises(BackendError, match="names no file"):
        path_from_url("sqlite://")


async def test_a_closed_backend_refuses_work(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path / "q.db")
    await backend.close()
    with pytest.raises(BackendError, match="closed"):
        await backend.enqueue(EnqueueRequest("q", 1))


async def test_non_json_payload_is_refused_at_enqueue(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path / "q.db")
    with pytest.raises(PayloadValidationError, match="not JSON-serialisable"):
        await backend.enqueue(EnqueueRequest("q", {"x": float("nan")}))
    await backend.close()


async def test_graceful_stop_releases_jobs_that_did_not_finish(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path / "q.db")
    job = await backend.enqueue(EnqueueRequest("stuck", 1))
    started = asyncio.Event()

    async def forever(data: int) -> int:
        started.set()
        await asyncio.sleep(3600)
        return data

    options = WorkerOptions(
        processors=[Processor.from_function("stuck", forever)], grace_period_s=0.05
    )
    worker = asyncio.create_task(backend.run_worker(options))
    await asyncio.wait_for(started.wait(), 10)
    options.stop.set()
    await asyncio.wait_for(worker, 10)
    info = await backend.get_job("stuck", job)
    assert info is not None
    assert info.state == JobState.WAITING  # released, not left leased until the lease expires
    assert info.attempts_made == 0
    await backend.close()


async def test_a_failing_write_does_not_undo_the_writes_grouped_with_it(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path / "q.db")
    broken = EnqueueRequest(None, 1)  # type: ignore[arg-type]  # NOT NULL fails inside the write
    results = await asyncio.gather(
        backend.enqueue(EnqueueRequest("q", 1, job_id="before")),
        backend.enqueue(broken),
        backend.enqueue(EnqueueRequest("q", 2, job_id="after")),
        return_exceptions=True,
    )
    assert results[0] == "before" and results[2] == "after"
    assert isinstance(results[1], sqlite3.IntegrityError)
    assert (await backend.counts("q")).waiting == 2
    await backend.close()


async def test_dead_letters_and_replay_skip_jobs_that_are_not_records(tmp_path: Path) -> None:
    # A job enqueued straight into a dead-letter queue (by hand, or by some other producer)
    # is not a record: listing and replay must not fail on it, nor move it anywhere.
    backend = SqliteBackend(tmp_path / "q.db")
    await backend.enqueue(EnqueueRequest("mail-dlq", {"hello": "world"}, job_id="stray"))
    await backend.enqueue(EnqueueRequest("mail-dlq", [1, 2], job_id="list"))
    record = {"queue": "mail", "job_id": "m-1", "payload": {"to": "a"}, "reason": "stalled"}
    await backend.enqueue(EnqueueRequest("mail-dlq", record, job_id="rec"))
    assert [r.id for r in await backend.dead_letters("mail-dlq")] == ["rec"]
    assert await backend.replay("mail-dlq") == 1
    info = await backend.get_job("mail", "m-1")
    assert info is not None and info.payload == {"to": "a"}
    assert (await backend.counts("mail-dlq")).waiting == 2  # the strays stay where they were
    await backend.close()
