"""The web monitor's chart reads a bounded aggregate on SQLite: per 10 s bucket the finished
and failed counts (SQL aggregates) and a capped latency sample, not a row per finished job."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from monitor_server import serving
from pikku_queue.adapters.sqlite.backend import SqliteBackend
from pikku_queue.backend import BucketsFinished, WorkerOptions
from pikku_queue.errors import NonRetryableError
from pikku_queue.options import ProcessorOptions
from pikku_queue.processor import Processor
from pikku_queue.records import EnqueueRequest, FinishedBucket
from pikkugen.web_monitor.config import MonitorConfig
from pikkugen.web_monitor.stats import BUCKET_MS

JOBS = 400


async def work(data: dict[str, int]) -> int:
    if data["n"] % 10 == 0:
        raise NonRetryableError("declined")
    return data["n"]


async def finished_jobs(path: Path) -> SqliteBackend:
    backend = SqliteBackend(path)
    await backend.enqueue_many([EnqueueRequest("chart", {"n": n}) for n in range(JOBS)])
    processor = Processor.from_function("chart", work, ProcessorOptions(concurrency=20))
    report = await backend.run_worker(WorkerOptions(processors=[processor], burst=True))
    assert (report.completed, report.failed) == (JOBS - JOBS // 10, JOBS // 10)
    return backend


async def test_sqlite_buckets_are_sql_aggregates_with_a_capped_latency_sample(
    tmp_path: Path,
) -> None:
    backend = await finished_jobs(tmp_path / "q.db")
    try:
        assert isinstance(backend, BucketsFinished)
        buckets = await backend.finished_buckets("chart", 0, BUCKET_MS, sample=7)
        every = FinishedBucket.of(await backend.finished_since("chart", 0), BUCKET_MS)
    finally:
        await backend.close()
    assert sum(b.finished for b in buckets) == JOBS
    assert sum(b.failed for b in buckets) == JOBS // 10
    assert {b.start_ms: (b.finished, b.failed) for b in buckets} == {
        start: (b.finished, b.failed) for start, b in every.items()
    }
    for bucket in buckets:
        assert bucket.start_ms % BUCKET_MS == 0
        assert len(bucket.latencies_ms) == min(7, bucket.finished)
        assert set(bucket.latencies_ms) <= set(every[bucket.start_ms].latencies_ms)


def test_the_chart_endpoint_counts_every_finished_job(tmp_path: Path) -> None:
    path = tmp_path / "q.db"

    async def prepare() -> None:
        await (await finished_jobs(path)).close()

    asyncio.run(prepare())
    config = MonitorConfig(url=f"sqlite:///{path}", queues=["chart"], dead_letter_queues={})
    with serving(config) as base, urllib.request.urlopen(base + "api/series?queue=chart") as r:
        series = json.loads(r.read())
    buckets = series["buckets"]
    assert sum(b["finished"] for b in buckets) == JOBS
    assert sum(b["failed"] for b in buckets) == JOBS // 10
    busy = [b for b in buckets if b["finished"]]
    assert busy and all(b["p50_ms"] is not None and b["p95_ms"] >= b["p50_ms"] for b in busy)
