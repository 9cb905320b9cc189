"""Throughput of a backend: N no-op jobs, enqueue all, then process them with one worker.

    .venv/bin/python benchmarks/throughput.py --backend sqlite   # or memory
    .venv/bin/python benchmarks/throughput.py --backend sqlite --backlog 100000

Prints enqueue/s and the two headline figures every throughput benchmark prints, by the same
names (`HEADLINES`): "from worker start to last completion" (N / process time, JSON
`process_per_s`) and "enqueue plus process" (N / (enqueue time + process time), JSON
`end_to_end_per_s`); then a final JSON line with every figure. Importable: `run(backend, jobs=..., concurrency=...)` takes
any `Backend`, so other backends' benchmarks (benchmarks/throughput_redis.py) report the same
figures the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from pikku_queue.backend import Backend, WorkerOptions
from pikku_queue.client import TypedQueue, known_queues
from pikku_queue.options import ProcessorOptions
from pikku_queue.processor import Processor
from pikku_queue.records import EnqueueRequest
from pydantic import BaseModel, TypeAdapter

#: The two headline figures, (JSON key, name): every throughput benchmark prints both, by
#: these names, and docs/performance.md says which one each table quotes.
HEADLINES = (
    ("process_per_s", "from worker start to last completion"),
    ("end_to_end_per_s", "enqueue plus process"),
)


def headline_legend() -> str:
    """One line naming the two figures, for a benchmark's table."""
    return (
        "jobs/s two ways: 'from worker start to last completion' = N / process time;"
        " 'enqueue plus process' = N / (enqueue time + process time)"
    )


class Payload(BaseModel):
    n: int


async def noop(data: Payload) -> None:
    return None


async def enqueue_jobs(backend: Backend, queue: str, jobs: int, mode: str) -> float:
    """Enqueue `jobs` jobs through the typed client; return the seconds it took."""
    typed: TypedQueue[Payload, None] = TypedQueue(queue, TypeAdapter(Payload), TypeAdapter(None))
    items = [Payload(n=n) for n in range(jobs)]
    started = time.perf_counter()
    if mode == "bulk":
        for chunk in range(0, jobs, 1000):
            await typed.enqueue_many(items[chunk : chunk + 1000], backend=backend)
    elif mode == "gather":
        for chunk in range(0, jobs, 500):
            await asyncio.gather(
                *(typed.enqueue(item, backend=backend) for item in items[chunk : chunk + 500])
            )
    else:
        for item in items:
            await typed.enqueue(item, backend=backend)
    elapsed = time.perf_counter() - started
    known_queues.pop(queue, None)
    return elapsed


async def run(
    backend: Backend,
    *,
    jobs: int = 10_000,
    concurrency: int = 50,
    enqueue_mode: str = "bulk",
    queue: str = "bench",
) -> dict[str, Any]:
    """Enqueue then process `jobs` no-op jobs on `backend`; return the figures."""
    lags: list[float] = []
    ticker = asyncio.create_task(_measure_lag(lags))
    enqueue_s = await enqueue_jobs(backend, queue, jobs, enqueue_mode)
    processor = Processor.from_function(queue, noop, ProcessorOptions(concurrency=concurrency))
    started = time.perf_counter()
    report = await backend.run_worker(WorkerOptions(processors=[processor], burst=True))
    process_s = time.perf_counter() - started
    ticker.cancel()
    counts = await backend.counts(queue)
    # Retention (SQLite keeps the last 10,000 completed by default) may have removed some.
    left = counts.waiting + counts.active + counts.delayed
    if report.completed != jobs or left or not 0 < counts.completed <= jobs:
        raise RuntimeError(f"expected {jobs} completed, worker says {report}, backend {counts}")
    return {
        "backend": backend.capabilities.backend,
        "jobs": jobs,
        "concurrency": concurrency,
        "enqueue_mode": enqueue_mode,
        "enqueue_s": round(enqueue_s, 3),
        "process_s": round(process_s, 3),
        "enqueue_per_s": round(jobs / enqueue_s),
        "process_per_s": round(jobs / process_s),
        "end_to_end_per_s": round(jobs / (enqueue_s + process_s)),
        # How late a 1 ms timer fired at worst while all this ran: event-loop stalls.
        "loop_lag_max_ms": round(max(lags, default=0.0) * 1000, 1),
    }


async def _measure_lag(lags: list[float]) -> None:
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        await asyncio.sleep(0.001)
        lags.append(loop.time() - before - 0.001)


async def probe_backlog(backend: Backend, backlog: int) -> dict[str, Any]:
    """Lease cost with `backlog` jobs waiting: time 200 leases of one job each."""
    reserve = getattr(backend, "reserve", None)
    bulk = getattr(backend, "enqueue_many", None)
    if reserve is None or bulk is None:
        return {}
    for chunk in range(0, backlog, 5000):
        await bulk(
            [EnqueueRequest("backlog", {"n": n}) for n in range(chunk, min(backlog, chunk + 5000))]
        )
    started = time.perf_counter()
    for _ in range(200):
        await reserve("backlog", 1, 30_000, "probe")
    per_lease_ms = (time.perf_counter() - started) / 200 * 1000
    return {"backlog": backlog, "lease_ms_with_backlog": round(per_lease_ms, 3)}


def _factory(name: str, folder: Path) -> Callable[[], Backend]:
    if name == "memory":
        from pikku_queue.adapters.memory.backend import MemoryBackend

        return MemoryBackend
    if name == "sqlite":
        from pikku_queue.adapters.sqlite.backend import SqliteBackend

        counter = iter(range(1_000_000))
        return lambda: SqliteBackend(folder / f"bench-{next(counter)}.db")
    raise SystemExit(f"unknown backend {name!r}: use sqlite or memory")


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        make = _factory(args.backend, Path(folder))
        runs = []
        for _ in range(args.repeat):
            backend = make()
            try:
                runs.append(
                    await run(
                        backend,
                        jobs=args.jobs,
                        concurrency=args.concurrency,
                        enqueue_mode=args.enqueue,
                    )
                )
            finally:
                await backend.close()
        result = sorted(runs, key=lambda r: r["end_to_end_per_s"])[len(runs) // 2]  # median
        if args.backlog:
            backend = make()
            try:
                result.update(await probe_backlog(backend, args.backlog))
            finally:
                await backend.close()
        return result


def main(
    argv: list[str] | None = None,
    runner: Callable[[Any], Coroutine[Any, Any, dict[str, Any]]] | None = None,
) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "memory", "redis"])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--enqueue", default="bulk", choices=["bulk", "gather", "single"])
    parser.add_argument("--repeat", type=int, default=1, help="runs; the median is reported")
    parser.add_argument("--backlog", type=int, default=0, help="also time leases with N waiting")
    args, rest = parser.parse_known_args(argv)
    if args.backend == "redis":
        # The Redis comparison (pikkugen vs raw bullmq vs SAQ vs SQLite) has its own script.
        from throughput_redis import main as redis_main

        passed = [
            a
            for a in (argv if argv is not None else sys.argv[1:])
            if a not in ("--backend", "redis", "--backend=redis")
        ]
        redis_main(passed)
        return
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    result = asyncio.run((runner or _main)(args))
    print(f"backend         {result['backend']} ({result['enqueue_mode']} enqueue)")
    print(f"jobs            {result['jobs']} at concurrency {result['concurrency']}")
    print(f"enqueue         {result['enqueue_per_s']:>8} jobs/s  ({result['enqueue_s']} s)")
    print(
        f"process         {result['process_per_s']:>8} jobs/s  ({result['process_s']} s):"
        " from worker start to last completion"
    )
    print(f"end to end      {result['end_to_end_per_s']:>8} jobs/s: enqueue plus process")
    print(f"loop lag        {result['loop_lag_max_ms']} ms at worst")
    if "lease_ms_with_backlog" in result:
        print(
            f"lease           {result['lease_ms_with_backlog']} ms with {result['backlog']} waiting"
        )
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
