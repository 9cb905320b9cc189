"""The SQLite file does not only grow. Retention as BullMQ has it
(`remove_on_complete` / `remove_on_fail`: keep N, or by age), a bounded default for the
embedded backend, applied in batches by the workers; stats that read no row per job."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from pikku_queue.adapters import connect
from pikku_queue.adapters.sqlite.backend import SqliteBackend
from pikku_queue.adapters.sqlite.pruning import PRUNE_EVERY
from pikku_queue.backend import WorkerOptions
from pikku_queue.clock import VirtualClock
from pikku_queue.errors import BackendError, NonRetryableError
from pikku_queue.monitor import QueueMonitor
from pikku_queue.options import ProcessorOptions
from pikku_queue.processor import Processor
from pikku_queue.records import EnqueueRequest, FinishedSummary
from pikku_queue.retention import SQLITE_KEEP_COMPLETED, SQLITE_KEEP_FAILED, parse_keep_jobs


async def ok_unless_negative(data: dict[str, int]) -> dict[str, int]:
    if data["n"] < 0:
        raise NonRetryableError("negative")
    return data


async def run(backend: SqliteBackend, jobs: list[int], dlq: str | None = None) -> None:
    await backend.enqueue_many([EnqueueRequest(queue="q", payload={"n": n}) for n in jobs])
    options = ProcessorOptions(concurrency=20, dead_letter_queue=dlq)
    processor = Processor.from_function("q", ok_unless_negative, options)
    worker = WorkerOptions(processors=[processor], burst=True, lease_ms=5_000)
    report = await asyncio.wait_for(backend.run_worker(worker), 60)
    assert report.completed + report.failed + report.dead_lettered == len(jobs)


def rows(path: Path, state: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(
            conn.execute("SELECT count(*) FROM jobs WHERE state = ?", (state,)).fetchone()[0]
        )


async def test_the_embedded_default_keeps_a_bounded_number_per_queue(tmp_path: Path) -> None:
    assert SQLITE_KEEP_COMPLETED == {"count": 10_000}
    assert SQLITE_KEEP_FAILED == {"count": 100_000}
    backend = connect(f"sqlite:///{tmp_path / 'q.db'}")
    assert isinstance(backend, SqliteBackend)
    assert (backend.remove_on_complete, backend.remove_on_fail) == (
        SQLITE_KEEP_COMPLETED,
        SQLITE_KEEP_FAILED,
    )
    await backend.close()


async def test_keep_n_completed_applied_every_prune_batch(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    backend = SqliteBackend(path, remove_on_complete=100, remove_on_fail=False)
    try:
        await run(backend, [*range(PRUNE_EVERY * 2), -1, -2])
        kept = rows(path, "completed")
        assert 100 <= kept < PRUNE_EVERY  # pruned in batches: never far past the rule
        await backend.prune("q")
        assert rows(path, "completed") == 100
        assert rows(path, "failed") == 2  # remove_on_fail=False keeps every failure
        # The newest are the ones kept: the last jobs enqueued are among them.
        with sqlite3.connect(path) as conn:
            last = conn.execute("SELECT max(seq) FROM jobs").fetchone()[0]
            kept_last = conn.execute(
                "SELECT count(*) FROM jobs WHERE state = 'completed' AND seq > ?", (last - 50,)
            ).fetchone()[0]
        assert kept_last >= 40
    finally:
        await backend.close()


async def test_keep_by_age_from_the_url_and_dead_letter_records_stay(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    clock = VirtualClock()
    url = f"sqlite:///{path}?remove_on_complete=age:60&remove_on_fail=true"
    backend = connect(url)
    assert isinstance(backend, SqliteBackend)
    backend.clock = clock
    try:
        await run(backend, [1, 2, -1], dlq="q-dlq")
        clock.advance(30_000)
        await backend.prune("q")
        assert rows(path, "completed") == 2  # 30 s old: younger than a minute
        assert rows(path, "dead_lettered") == 0  # remove_on_fail=true: gone at the next prune
        assert len(await backend.dead_letters("q-dlq")) == 1  # the record is a waiting job
        clock.advance(31_000)
        await backend.prune("q")
        assert rows(path, "completed") == 0
    finally:
        await backend.close()


@pytest.mark.parametrize("text", ["forever", "count:", "age:1,age:2", "-5"])
def test_a_retention_rule_that_is_not_understood_is_an_error(text: str) -> None:
    with pytest.raises(BackendError, match="remove_on_complete"):
        parse_keep_jobs("remove_on_complete", text)


def test_an_unknown_sqlite_url_parameter_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="unknown parameter 'keep'"):
        connect(f"sqlite:///{tmp_path / 'q.db'}?keep=1")


async def test_stats_read_aggregates_not_a_row_per_job(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    backend = SqliteBackend(path, remove_on_complete=False)
    try:
        await run(backend, [*range(30), -1, -2])
        summary = await backend.finished_summary("q", 0)
        assert (summary.succeeded, summary.failed) == (30, 2)
        rows_summary = FinishedSummary.of(await backend.finished_since("q", 0))
        assert (rows_summary.succeeded, rows_summary.failed) == (30, 2)
        assert summary.first_succeeded_ms == rows_summary.first_succeeded_ms
        assert sorted(summary.latencies_ms) == sorted(rows_summary.latencies_ms)
        stats = await QueueMonitor(["q"], backend).get_stats("q")
        assert stats.error_rate == round(2 / 32, 4)
    finally:
        await backend.close()


async def test_stats_stay_right_when_fewer_completed_than_failed_are_kept(
    tmp_path: Path,
) -> None:
    """With retention each outcome's rate counts over the span its kept jobs cover, so keeping
    100 completed but every failure does not inflate the error rate."""
    path = tmp_path / "q.db"
    clock = VirtualClock()
    backend = SqliteBackend(path, clock=clock, remove_on_complete=False)
    try:
        payloads: list[Any] = []
        for _ in range(100):  # 10 completions and 1 failure a second for 100 s
            payloads = [*range(10), -1]
            await run(backend, payloads)
            clock.advance(1_000)
        backend.remove_on_complete = 100
        await backend.prune("q")
        stats = await QueueMonitor(["q"], backend).get_stats("q")
        assert stats.error_rate == pytest.approx(1 / 11, abs=0.02)
        assert stats.throughput_per_minute == pytest.approx(11 * 60, rel=0.15)
    finally:
        await backend.close()
