"""Known jobs for the observability tests: what completes, retries, dead-letters and fails."""

from __future__ import annotations

import asyncio
import urllib.request
from dataclasses import dataclass

from pikku_queue import counts
from pikku_queue.backend import Backend
from pikku_queue.errors import NonRetryableError
from pikku_queue.options import ProcessorOptions, RetryOptions
from pikku_queue.processor import Processor
from pikku_queue.records import EnqueueRequest


@dataclass(frozen=True)
class Expected:
    completed: int
    retried: int
    dead_lettered: int
    failed: int


_FAILED_ONCE: set[tuple[str, int]] = set()


def processors(tag: str) -> list[Processor]:
    async def ok(data: dict[str, int]) -> int:
        key = (tag, data["n"])
        if data["n"] % 2 == 0 and key not in _FAILED_ONCE:
            _FAILED_ONCE.add(key)
            raise RuntimeError(f"first attempt of {data['n']} fails")
        return data["n"]

    async def doomed(data: dict[str, int]) -> None:
        raise NonRetryableError(f"job {data['n']} can never work")

    retry = RetryOptions(attempts=3, delay=10)
    return [
        Processor.from_function("obs-ok", ok, ProcessorOptions(retry_options=retry)),
        Processor.from_function(
            "obs-doomed", doomed, ProcessorOptions(dead_letter_queue="obs-dlq")
        ),
        Processor.from_function("obs-lost", doomed, ProcessorOptions()),
    ]


QUEUES = ["obs-ok", "obs-doomed", "obs-lost"]


async def enqueue_known(backend: Backend) -> dict[str, Expected]:
    """6 jobs on obs-ok (3 retry once, all complete), 2 dead-lettered, 1 failed."""
    for n in range(6):
        await backend.enqueue(EnqueueRequest("obs-ok", {"n": n}))
    for n in range(2):
        await backend.enqueue(EnqueueRequest("obs-doomed", {"n": n}))
    await backend.enqueue(EnqueueRequest("obs-lost", {"n": 0}))
    return {
        "obs-ok": Expected(completed=6, retried=3, dead_lettered=0, failed=0),
        "obs-doomed": Expected(completed=0, retried=0, dead_lettered=2, failed=0),
        "obs-lost": Expected(completed=0, retried=0, dead_lettered=0, failed=1),
    }


async def wait_finished(
    backend: Backend, expected: dict[str, Expected], limit_s: float = 60
) -> None:
    """Until every queue has finished its known jobs (bounded: fails after `limit_s`)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while True:
        done = True
        for queue, want in expected.items():
            c = await backend.counts(queue)
            if counts.finished(c) < want.completed + want.dead_lettered + want.failed:
                done = False
        if done:
            return
        assert loop.time() < deadline, "the worker did not finish the known jobs in time"
        await asyncio.sleep(0.05)


async def scrape(url: str) -> str:
    def get() -> str:
        with urllib.request.urlopen(url, timeout=10) as response:
            return str(response.read().decode())

    return await asyncio.to_thread(get)
