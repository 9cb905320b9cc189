"""PgQueuer: N no-op jobs (one bulk enqueue), drained by one worker at concurrency C; prints
enqueue_s and process_s as JSON. Runs in the benchmark's own venv (throughput_postgres.py)."""

import asyncio
import json
import sys
import time

import asyncpg
from pgqueuer import PgQueuer
from pgqueuer.db import AsyncpgDriver
from pgqueuer.queries import Queries
from pgqueuer.types import QueueExecutionMode


async def main(url, jobs, concurrency):
    conn = await asyncpg.connect(url)
    driver = AsyncpgDriver(conn)
    queries = Queries(driver)
    if not await queries.schema_is_installed():
        await queries.install()
    started = time.perf_counter()
    await queries.enqueue(["noop"] * jobs, [b"{}"] * jobs, [0] * jobs)
    enqueue_s = time.perf_counter() - started
    pgq = PgQueuer(driver)
    done = 0

    @pgq.entrypoint("noop")
    async def noop(job):
        nonlocal done
        done += 1

    started = time.perf_counter()
    await pgq.run(
        batch_size=max(concurrency // 2, 1),
        mode=QueueExecutionMode.drain,
        max_concurrent_tasks=concurrency,
    )
    process_s = time.perf_counter() - started
    await conn.close()
    assert done == jobs, done
    print(json.dumps({"enqueue_s": enqueue_s, "process_s": process_s}))


asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
