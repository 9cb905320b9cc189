"""A worker process the fault tests kill and cut off from its server.

usage: python fault_worker.py POSTGRESQL_URL QUEUE [MACHINE]

MACHINE names the worker (`<machine>:<pid>`), as a host name would.

Each job sleeps `sleep_ms`, then inserts its `n` into the table `<schema>.ran` on a
connection of its own, so the test can tell "completed" (the backend's record) from "ran"
(ours) and see duplicates.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from typing import Any

import psycopg
from pikku_queue.adapters.postgresql.backend import PostgresBackend
from pikku_queue.backend import WorkerOptions
from pikku_queue.context import JobContext
from pikku_queue.options import ProcessorOptions, RetryOptions
from pikku_queue.processor import Processor


async def main(url: str, queue: str, machine: str) -> None:
    backend = PostgresBackend(url)
    schema = backend.settings.schema

    async def work(ctx: JobContext, data: dict[str, Any]) -> int:
        await asyncio.sleep(data.get("sleep_ms", 20) / 1000)
        async with await psycopg.AsyncConnection.connect(
            backend.settings.conninfo, autocommit=True
        ) as conn:
            await conn.execute(f"INSERT INTO {schema}.ran (n) VALUES (%s)", (data["n"],))
        return int(data["n"])

    options = WorkerOptions(
        processors=[
            Processor.from_function(
                queue,
                work,
                # The job's own write fails while the server restarts: retried, as a
                # processor with side effects on a database should be.
                ProcessorOptions(
                    concurrency=10,
                    max_stalled_count=100,
                    retry_options=RetryOptions(attempts=20, delay=300),
                ),
            )
        ],
        lease_ms=1000,
        grace_period_s=2,
        worker_id=f"{machine}:{os.getpid()}",
    )
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, options.stop.set)
    await backend.migrate()
    print("ready", flush=True)
    try:
        await backend.run_worker(options)
    finally:
        await backend.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.CRITICAL)
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "local"))
