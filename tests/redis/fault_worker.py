"""A worker process the fault tests kill, restart and disconnect.

usage: python fault_worker.py REDIS_URL QUEUE

Each job sleeps `sleep_ms` and then appends its `n` to the list `<QUEUE>:done` in Redis, so
the test can tell "completed" (BullMQ's record) from "ran" (our record) and see duplicates.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from typing import Any

import redis.asyncio as aioredis
from pikku_queue.adapters.redis.backend import RedisBackend
from pikku_queue.backend import WorkerOptions
from pikku_queue.context import JobContext
from pikku_queue.options import ProcessorOptions, RetryOptions
from pikku_queue.processor import Processor


async def main(url: str, queue: str) -> None:
    backend = RedisBackend(url)
    recorder = aioredis.Redis.from_url(backend.settings.connection_url)
    done_key = f"{backend.settings.prefix}:{queue}:done"

    async def work(ctx: JobContext, data: dict[str, Any]) -> int:
        await asyncio.sleep(data.get("sleep_ms", 20) / 1000)
        await recorder.rpush(done_key, data["n"])
        return int(data["n"])

    options = WorkerOptions(
        processors=[
            Processor.from_function(
                queue,
                work,
                # The job's own Redis write fails while Redis restarts: retried, as a
                # processor with side effects on a network service should be.
                ProcessorOptions(
                    concurrency=10,
                    max_stalled_count=100,
                    retry_options=RetryOptions(attempts=10, delay=300),
                ),
            )
        ],
        lease_ms=1000,
        grace_period_s=2,
    )
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, options.stop.set)
    print("ready", flush=True)
    try:
        await backend.run_worker(options)
    finally:
        await backend.close()
        await recorder.aclose()


if __name__ == "__main__":
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(main(sys.argv[1], sys.argv[2]))
