"""`/metrics` scraped while a real worker runs, on SQLite and on Redis: the counters match the
jobs run, the histograms count every attempt, and the text parses as Prometheus exposition."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("prometheus_client")

from hypothesis import given, settings
from hypothesis import strategies as st
from pikku_queue import observe, runner
from pikku_queue.adapters import connect
from pikku_queue.backend import Backend, WorkerOptions
from pikku_queue.metrics import BUCKETS, Metrics
from pikku_queue.outcomes import Completed, DeadLetter, Delivery, ErrorInfo, Outcome
from pikku_queue.processor import Processor
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from support import QUEUES, Expected, enqueue_known, processors, scrape, wait_finished


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def run_and_scrape(backend: Backend) -> tuple[dict[str, Expected], str]:
    expected = await enqueue_known(backend)
    server = runner.start_metrics(0, "127.0.0.1", backend, QUEUES)
    assert server is not None
    options = WorkerOptions(processors=processors(uuid.uuid4().hex), lease_ms=5_000)
    worker = asyncio.create_task(backend.run_worker(options))
    try:
        await wait_finished(backend, expected)
        await asyncio.sleep(0.2)  # the last settle is counted when the engine returns
        text = await scrape(server.url)  # the worker is still running
    finally:
        options.stop.set()
        await worker
        server.close()
    return expected, text


def check(expected: dict[str, Expected], text: str) -> None:
    found = samples(text)

    def value(name: str, **labels: Any) -> float:
        return found[(name, tuple(sorted(labels.items())))]

    for queue, want in expected.items():
        assert value("pikku_jobs_completed_total", queue=queue) == want.completed
        assert value("pikku_jobs_retried_total", queue=queue) == want.retried
        assert value("pikku_jobs_dead_lettered_total", queue=queue) == want.dead_lettered
        assert value("pikku_jobs_failed_total", queue=queue) == want.failed
        assert value("pikku_jobs_stalled_total", queue=queue) == 0
        attempts = want.completed + want.retried + want.dead_lettered + want.failed
        assert value("pikku_job_duration_seconds_count", queue=queue) == attempts
        assert value("pikku_job_duration_seconds_bucket", queue=queue, le="+Inf") == attempts
        jobs = want.completed + want.dead_lettered + want.failed
        assert value("pikku_job_wait_seconds_count", queue=queue) == jobs
        assert value("pikku_jobs_active", queue=queue) == 0
        # The backend's counts, by the states of pikku_queue.counts.
        assert value("pikku_queue_jobs", queue=queue, state="completed") == want.completed
        assert value("pikku_queue_jobs", queue=queue, state="failed") == want.failed
        assert value("pikku_queue_jobs", queue=queue, state="dead_lettered") == want.dead_lettered
        assert value("pikku_queue_jobs", queue=queue, state="waiting") == 0


async def test_metrics_during_a_sqlite_worker_run(tmp_path: Path) -> None:
    backend = connect(f"sqlite:///{tmp_path / 'q.db'}")
    try:
        expected, text = await run_and_scrape(backend)
    finally:
        await backend.close()
    check(expected, text)
    assert not any(isinstance(o, Metrics) for o in observe.OBSERVERS)  # closed: no counting


@pytest.mark.redis
async def test_metrics_during_a_redis_worker_run(redis_server: Any) -> None:
    pytest.importorskip("bullmq")
    backend = connect(f"{redis_server.url}?prefix=t{uuid.uuid4().hex[:10]}")
    try:
        expected, text = await run_and_scrape(backend)
    finally:
        await backend.close()
    check(expected, text)


async def test_no_port_no_server(tmp_path: Path) -> None:
    backend = connect(f"sqlite:///{tmp_path / 'q.db'}")
    try:
        assert runner.start_metrics(None, "127.0.0.1", backend, QUEUES) is None
        assert not any(isinstance(o, Metrics) for o in observe.OBSERVERS)
    finally:
        await backend.close()


@settings(max_examples=50, deadline=None)
@given(
    durations=st.lists(
        st.one_of(st.sampled_from(BUCKETS), st.floats(0, 1000, allow_nan=False)), max_size=30
    ),
    failed=st.integers(0, 5),
)
def test_the_counters_and_buckets_match_the_attempts(durations: list[float], failed: int) -> None:
    """Every attempt lands in each `le` bucket it is not above (a value equal to a bound
    counts in that bucket), the count and sum are the attempts', the counters by outcome."""
    metrics = Metrics()
    metrics.for_queues(["idle"])

    async def work(data: int) -> None:
        return None

    processor = Processor.from_function("q", work)
    error = ErrorInfo("ValueError", "no")
    for index, elapsed in enumerate(durations):
        delivery = Delivery("j", "q", {}, attempt=2, enqueued_at_ms=0)
        outcome: Outcome = DeadLetter("attempts_exhausted", error) if index < failed else (
            Completed(None))  # fmt: skip
        end = metrics.attempt_started(processor, (delivery,))
        end(((delivery, outcome),), elapsed)
    found = samples(generate_latest(metrics.registry).decode())
    q = (("queue", "q"),)
    n_failed = min(failed, len(durations))
    if durations:
        assert found[("pikku_jobs_completed_total", q)] == len(durations) - n_failed
        assert found[("pikku_jobs_failed_total", q)] == n_failed
        assert found[("pikku_jobs_active", q)] == 0
        assert found[("pikku_job_duration_seconds_count", q)] == len(durations)
        assert found[("pikku_job_duration_seconds_sum", q)] == pytest.approx(sum(durations))
        for bound in (*BUCKETS, float("inf")):
            le = "+Inf" if bound == float("inf") else repr(float(bound))
            want = sum(1 for d in durations if d <= bound)
            assert found[("pikku_job_duration_seconds_bucket", (("le", le), *q))] == want
        assert found[("pikku_job_wait_seconds_count", q)] == 0  # attempt 2: no wait observed
    assert found[("pikku_jobs_completed_total", (("queue", "idle"),))] == 0
