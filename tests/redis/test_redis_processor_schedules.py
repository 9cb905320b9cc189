"""A processor's own `repeat=` on Redis: the worker upserts one BullMQ job scheduler per queue
at start (a restart changes nothing, a changed schedule replaces the old one and its pending
run, a dropped one is removed), and its runs carry the payload `{}`."""

from __future__ import annotations

from typing import Any

import pytest
from pikku_queue.adapters.redis.backend import RedisBackend
from pikku_queue.adapters.redis.consumer import PROCESSOR_SCHEDULER_ID
from pikku_queue.backend import WorkerOptions
from pikku_queue.options import ProcessorOptions, Repeat
from pikku_queue.processor import Processor

pytestmark = pytest.mark.redis

seen: list[Any] = []


async def cleanup(data: dict[str, Any]) -> int:
    seen.append(data)
    return len(data)


async def start(backend: RedisBackend, repeat: Repeat | None) -> None:
    """One worker start in burst mode: it registers the schedule and does not wait for it."""
    processor = Processor.from_function("cleanup", cleanup, ProcessorOptions(repeat=repeat))
    await backend.run_worker(WorkerOptions(processors=[processor], burst=True, lease_ms=1000))


async def schedulers(backend: RedisBackend) -> list[dict[str, Any]]:
    queue = await backend.queue("cleanup")
    return list(await queue.getJobSchedulers())


async def test_the_worker_upserts_one_scheduler_per_queue(backend: RedisBackend) -> None:
    seen.clear()
    await start(backend, Repeat(cron="0 2 * * *"))
    [nightly] = await schedulers(backend)
    assert nightly["key"] == PROCESSOR_SCHEDULER_ID
    assert nightly["pattern"] == "0 2 * * *" and nightly["tz"] == "UTC"
    assert nightly["next"] % 86_400_000 == 2 * 3_600_000
    await start(backend, Repeat(cron="0 2 * * *"))  # a restart
    assert await schedulers(backend) == [nightly]
    assert (await backend.counts("cleanup")).delayed == 1
    # a changed cron replaces the scheduler and its pending run, it does not add a second
    await start(backend, Repeat(cron="30 4 * * *"))
    [changed] = await schedulers(backend)
    assert changed["key"] == PROCESSOR_SCHEDULER_ID and changed["pattern"] == "30 4 * * *"
    assert changed["next"] % 86_400_000 == 4 * 3_600_000 + 30 * 60_000
    assert (await backend.counts("cleanup")).delayed == 1
    assert seen == []
    # to an interval: BullMQ fires it at once, with the payload {}
    await start(backend, Repeat(every=3_600_000))
    [hourly] = await schedulers(backend)
    assert hourly["every"] == 3_600_000 and "pattern" not in hourly
    assert seen == [{}]
    counts = await backend.counts("cleanup")
    assert (counts.completed, counts.delayed, counts.waiting) == (1, 1, 0)
    # the declaration dropped: the scheduler and its next run go
    await start(backend, None)
    assert await schedulers(backend) == []
    assert (await backend.counts("cleanup")).delayed == 0
