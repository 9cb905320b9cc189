"""Monitor figures from known finish times (a virtual clock makes them exact)."""

from __future__ import annotations

import pytest
from pikku_queue.adapters.memory.backend import MemoryBackend
from pikku_queue.backend import WorkerOptions
from pikku_queue.client import TypedQueue, known_queues
from pikku_queue.clock import VirtualClock
from pikku_queue.errors import NonRetryableError, UnknownQueueError
from pikku_queue.monitor import QueueMonitor, percentile
from pikku_queue.processor import Processor
from pikku_queue.records import EnqueueRequest
from pydantic import TypeAdapter


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 0.5) is None
    assert percentile([5.0], 0.95) == 5.0
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.50) == 50.0
    assert percentile(values, 0.95) == 95.0


async def test_stats_from_a_virtual_run() -> None:
    clock = VirtualClock(start_ms=1_000_000)
    backend = MemoryBackend(clock=clock)

    async def work(data: int) -> int:
        if data < 0:
            raise NonRetryableError("negative")
        return data

    # Four jobs enqueued at t0; the worker starts 30 s later, so each waits 30 s.
    for n in (1, 2, 3, -1):
        await backend.enqueue(EnqueueRequest("m", n))
    clock.advance(30_000)
    processor = Processor.from_function("m", work)
    await backend.run_worker(WorkerOptions(processors=[processor], burst=True))
    await backend.enqueue(EnqueueRequest("m", 9, delay_ms=600_000))

    monitor = QueueMonitor(queues=["m"], backend=backend, window_ms=60_000)
    stats = await monitor.get_stats("m")
    assert (stats.completed, stats.failed, stats.dead_lettered) == (3, 1, 0)
    assert (stats.waiting, stats.active, stats.delayed, stats.queue_size) == (0, 0, 1, 1)
    assert stats.latency_p50_ms == 30_000
    assert stats.latency_p95_ms == 30_000
    assert stats.error_rate == 0.25
    assert stats.throughput_per_minute == 240.0  # 4 jobs within the 1 s minimum span
    assert stats.as_dict()["queue"] == "m"
    with pytest.raises(UnknownQueueError):
        await monitor.get_stats("other")
    await backend.close()


async def test_without_a_backend_it_reads_where_the_generated_client_enqueues(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The README's `QueueMonitor(queues=[...]).get_stats(...)`: generated queues carry the
    # project's `[tool.pikkugen] backend`, so the monitor must read that one, not the default.
    monkeypatch.delenv("PIKKU_QUEUE_URL", raising=False)
    queue = TypedQueue(
        "monitored", TypeAdapter(int), TypeAdapter(int), backend_url="memory://monitor-test"
    )
    try:
        handle = await queue.enqueue(1)
        stats = await QueueMonitor(queues=["monitored"]).get_stats("monitored")
        assert stats.waiting == 1
    finally:
        known_queues.pop("monitored", None)
        await handle.backend.close()
