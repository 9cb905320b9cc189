"""Procrastinate: N no-op jobs (batch_defer_async), drained by one worker (wait=False) at
concurrency C; prints enqueue_s and process_s as JSON. Runs in the benchmark's own venv."""

import asyncio
import json
import logging
import sys
import time

from procrastinate import App, PsycopgConnector


async def main(url, jobs, concurrency):
    app = App(connector=PsycopgConnector(conninfo=url))
    done = 0

    @app.task(name="noop")
    async def noop(n):
        nonlocal done
        done += 1

    async with app.open_async():
        await app.schema_manager.apply_schema_async()  # a fresh database per run
        started = time.perf_counter()
        await noop.batch_defer_async(*[{"n": i} for i in range(jobs)])
        enqueue_s = time.perf_counter() - started
        started = time.perf_counter()
        await app.run_worker_async(
            concurrency=concurrency,
            wait=False,
            install_signal_handlers=False,
            delete_jobs="successful",
        )
        process_s = time.perf_counter() - started
    assert done == jobs, done
    print(json.dumps({"enqueue_s": enqueue_s, "process_s": process_s}))


logging.basicConfig(level=logging.ERROR)
asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
