"""A burst worker on Redis always ends: jobs that cannot progress are named in
`WorkerReport.undone` (the runner's exit 3)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from pikku_queue.adapters.redis.backend import RedisBackend
from pikku_queue.backend import WorkerOptions
from pikku_queue.context import JobContext
from pikku_queue.options import ProcessorOptions
from pikku_queue.processor import Processor
from pikku_queue.records import EnqueueRequest

pytestmark = pytest.mark.redis


async def test_a_job_whose_outcome_is_never_stored_is_held_and_named(
    backend: RedisBackend,
) -> None:
    """Each run of the job loses its lock before BullMQ can store the outcome (here the
    processor deletes it, as another program could), so it stalls and comes back; the fourth
    delivery is held, not run, and the worker ends naming it. Its neighbour completes."""
    queue = f"burst-{uuid.uuid4().hex[:8]}"
    runs: list[str] = []
    client = await backend.client()

    async def loses_its_lock(ctx: JobContext, data: dict[str, Any]) -> None:
        runs.append(ctx.job_id)
        if data["n"] == 0:
            await client.delete(backend.key(queue, ctx.job_id) + ":lock")

    bad = await backend.enqueue(EnqueueRequest(queue=queue, payload={"n": 0}))
    good = await backend.enqueue(EnqueueRequest(queue=queue, payload={"n": 1}))
    options = ProcessorOptions(max_stalled_count=50)
    processor = Processor.from_function(queue, loses_its_lock, options)
    report = await asyncio.wait_for(
        backend.run_worker(WorkerOptions(processors=[processor], burst=True, lease_ms=1000)), 90
    )
    assert runs.count(good) == 1
    assert runs.count(bad) == 3
    [undone] = report.undone
    assert f"{queue} job {bad}" in undone and "no verdict could be stored" in undone
    info = await backend.get_job(queue, good)
    assert info is not None and info.state.value == "completed"
    assert report.dead_lettered + report.failed == 0
