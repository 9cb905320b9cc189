"""Single-job latency on an idle queue: enqueue one no-op job, wait for its result, again and
again, one at a time; pikkugen on Redis next to Node BullMQ on the same fresh redis-server, in
the same run, and pikkugen on SQLite.

    .venv/bin/python benchmarks/latency.py               # 200 jobs per contender
    .venv/bin/python benchmarks/latency.py --jobs 100 --rounds 3

Each contender runs its worker in the producer's own process, idle between jobs:

    node_bullmq            `queue.add` + `job.waitUntilFinished(queueEvents)` (benchmarks/node/
                           latency.cjs, the npm packages of tests/interop/node, installed into
                           .npm-cache/interop as throughput_redis.py does)
    pikkugen_redis         `TypedQueue.enqueue` + `JobHandle.result()`: woken by BullMQ's
                           events stream, as QueueEvents is
    pikkugen_redis_polled  the same jobs, the result read by polling (2 ms, growing by half):
                           what `result()` did before it listened to the stream
    pikkugen_sqlite        SQLite, the worker in the same process: woken by its settle
    pikkugen_sqlite_apart  SQLite, the worker on another backend object of the file (as in
                           another process): the bounded polling

Rounds are interleaved (the order rotated); each contender's figure is the median over all its
jobs of all rounds, p95 beside it. Target: pikkugen_redis <= 1.5 x node_bullmq. Ends with one
JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "redis"))

from pikku_queue.backend import Backend, WorkerOptions  # noqa: E402
from pikku_queue.client import JobHandle, TypedQueue, known_queues  # noqa: E402
from pikku_queue.processor import Processor  # noqa: E402
from pikku_queue.records import FINAL_STATES  # noqa: E402
from pydantic import TypeAdapter  # noqa: E402
from redis_server import RedisServer  # noqa: E402
from throughput_redis import node_modules  # noqa: E402

NODE_SCRIPT = HERE / "node" / "latency.cjs"
TARGET = 1.5
WARMUP = 10


async def echo(data: int) -> int:
    return data


async def polled_result(handle: JobHandle[int]) -> Any:
    """`result()` as it was before it listened for a push: read, sleep 2 ms growing by half."""
    pause = 0.002
    while True:
        info = await handle.backend.get_job(handle.queue, handle.id)
        if info is not None and info.state in FINAL_STATES:
            return info.result
        await asyncio.sleep(pause)
        pause = min(pause * 1.5, 0.25)


async def pikkugen(
    producer: Backend, worker_side: Backend, queue: str, jobs: int, polled: bool = False
) -> list[float]:
    """ms per job: enqueue through the typed client, wait for the result; the worker runs on
    `worker_side` in this process (the same object as `producer`, or not)."""
    typed: TypedQueue[int, int] = TypedQueue(queue, TypeAdapter(int), TypeAdapter(int))
    options = WorkerOptions(processors=[Processor.from_function(queue, echo)])
    worker = asyncio.create_task(worker_side.run_worker(options))
    ms: list[float] = []
    try:
        for n in range(WARMUP + jobs):
            started = time.perf_counter()
            handle = await typed.enqueue(n, backend=producer)
            result = await (polled_result(handle) if polled else handle.result(timeout=10))
            took = (time.perf_counter() - started) * 1000
            if result != n:
                raise RuntimeError(f"job {n} returned {result!r}")
            if n >= WARMUP:
                ms.append(took)
    finally:
        options.stop.set()
        await worker
        known_queues.pop(queue, None)
    return ms


async def pikkugen_redis(url: str, jobs: int, run: int, polled: bool) -> list[float]:
    from pikku_queue.adapters.redis.backend import RedisBackend

    backend = RedisBackend(f"{url}?prefix=lat-{'p' if polled else 'a'}{run}")
    try:
        return await pikkugen(backend, backend, "latency", jobs, polled)
    finally:
        await backend.close()


async def pikkugen_sqlite(folder: Path, jobs: int, run: int, apart: bool) -> list[float]:
    from pikku_queue.adapters.sqlite.backend import SqliteBackend

    path = folder / f"latency-{run}-{apart}.db"
    producer = SqliteBackend(path)
    worker_side = SqliteBackend(path) if apart else producer
    try:
        return await pikkugen(producer, worker_side, "latency", jobs)
    finally:
        await producer.close()
        if worker_side is not producer:
            await worker_side.close()


def node_bullmq(port: int, jobs: int, run: int) -> list[float] | str:
    modules, why = node_modules()
    if modules is None:
        return why
    connection = json.dumps({"host": "127.0.0.1", "port": port, "db": 0})
    done = subprocess.run(
        [shutil.which("node") or "node", str(NODE_SCRIPT), connection, f"lat-e{run}", "latency",
         str(jobs), str(WARMUP)],
        capture_output=True, text=True, timeout=600,
        env={"NODE_PATH": str(modules), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    if done.returncode != 0:
        return f"Node BullMQ run failed: {done.stderr.strip()[-300:]}"
    return list(json.loads(done.stdout.strip().splitlines()[-1])["ms"])


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1], 2),
        "jobs": len(ordered),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200, help="jobs per contender per round")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args(argv)
    samples: dict[str, list[float]] = {
        "node_bullmq": [],
        "pikkugen_redis": [],
        "pikkugen_redis_polled": [],
        "pikkugen_sqlite": [],
        "pikkugen_sqlite_apart": [],
    }
    missing: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "redis").mkdir()
        server = RedisServer(Path(folder) / "redis").start()
        url, n = server.url, args.jobs
        contenders: dict[str, Callable[[int], list[float] | str]] = {
            "node_bullmq": lambda run: node_bullmq(server.port, n, run),
            "pikkugen_redis": lambda run: asyncio.run(pikkugen_redis(url, n, run, False)),
            "pikkugen_redis_polled": lambda run: asyncio.run(pikkugen_redis(url, n, run, True)),
            "pikkugen_sqlite": lambda run: asyncio.run(
                pikkugen_sqlite(Path(folder), n, run, False)
            ),
            "pikkugen_sqlite_apart": lambda run: asyncio.run(
                pikkugen_sqlite(Path(folder), n, run, True)
            ),
        }
        order = list(contenders)
        try:
            for run in range(args.rounds):
                for name in order[run % len(order) :] + order[: run % len(order)]:
                    got = contenders[name](run)
                    if isinstance(got, str):
                        missing[name] = got
                    else:
                        samples[name].extend(got)
        finally:
            server.stop()
    rows = {name: summary(values) for name, values in samples.items() if values}
    node = rows.get("node_bullmq")
    ours = rows.get("pikkugen_redis")
    over_node = round(ours["median_ms"] / node["median_ms"], 2) if node and ours else None
    return {
        "benchmark": "latency",
        "jobs_per_round": args.jobs,
        "rounds": args.rounds,
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "rows": rows,
        "not_measured": missing,
        "pikkugen_redis_over_node": over_node,
        "goal_met": over_node is not None and over_node <= TARGET,
    }


if __name__ == "__main__":
    figures = main()
    print(
        f"idle single-job latency, enqueue to result seen by the producer, worker in the same"
        f" process; {figures['jobs_per_round']} jobs x {figures['rounds']} round(s) each;"
        f" load average {figures['load_average']}"
    )
    print(f"{'':24}{'median ms':>10}{'p95 ms':>9}{'jobs':>6}")
    for name, row in figures["rows"].items():
        print(f"{name:24}{row['median_ms']:>10}{row['p95_ms']:>9}{row['jobs']:>6}")
    for name, why in figures["not_measured"].items():
        print(f"{name:24}  not measured: {why}")
    print(
        f"pikkugen_redis / node_bullmq: {figures['pikkugen_redis_over_node']}"
        f" (goal <= {TARGET}: {'met' if figures['goal_met'] else 'NOT met'})"
    )
    print(json.dumps(figures))
