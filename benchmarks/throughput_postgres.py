"""PostgreSQL throughput on one private cluster, same run: pikkugen vs Procrastinate and
PgQueuer, and pikkugen on Redis beside it; idle latency and bulk enqueue.

    .venv/bin/python benchmarks/throughput_postgres.py              # 10,000 jobs, concurrency 50
    .venv/bin/python benchmarks/throughput_postgres.py --no-peers   # pikkugen only

The cluster is `tests/postgresql/pg_server.py`'s with fsync on and `synchronous_commit=off`
(a crash of the machine may lose the last ~0.2 s of commits, never corrupt: the analogue of
the Redis run's `appendfsync everysec`). Procrastinate and PgQueuer run in their own venv under
the temp dir (created on first use; it keeps benchmark-only packages out of the project's
environment), each against a database of its own on the same cluster. Figures:

* jobs/s two ways, as benchmarks/throughput.py names them, one worker process, no-op jobs:
  "enqueue plus process" N / (enqueue time + process time), and "from worker start to last
  completion" N / process time;
* idle latency: median of 200 single jobs, enqueue to the result seen by the producer
  (`JobHandle.result()`, woken by NOTIFY), with a worker idle on LISTEN; the same with the
  producer polling the job instead, as the same-run baseline;
* bulk enqueue: jobs/s of typed `enqueue_many` of N jobs, 1,000 per call (one statement
  each), median of 3 rounds, with this process's CPU per job.

Each figure is printed beside its target and the earlier figure; the machine's load average
is in the JSON.

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "redis"))
sys.path.insert(0, str(HERE.parent / "tests" / "postgresql"))

import throughput  # noqa: E402
import throughput_redis  # noqa: E402
from pg_server import PostgresServer  # noqa: E402
from pikku_queue.adapters.postgresql.backend import PostgresBackend  # noqa: E402
from pikku_queue.backend import WorkerOptions  # noqa: E402
from pikku_queue.client import TypedQueue  # noqa: E402
from pikku_queue.options import ProcessorOptions  # noqa: E402
from pikku_queue.processor import Processor  # noqa: E402
from pydantic import TypeAdapter  # noqa: E402
from redis_server import REDIS_SERVER, RedisServer  # noqa: E402

PEERS_VENV = Path(tempfile.gettempdir()) / "pikkugen-bench-pg-venv"
PEERS_REQUIREMENTS = ("procrastinate==3.10.0", "pgqueuer==1.6.0", "asyncpg", "psycopg[binary]")
PEERS = {
    "procrastinate": HERE / "postgres" / "procrastinate_run.py",
    "pgqueuer": HERE / "postgres" / "pgqueuer_run.py",
}


def peers_python() -> tuple[Path | None, str]:
    python = PEERS_VENV / "bin" / "python"
    check = [str(python), "-c", "import procrastinate, pgqueuer"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python, ""
    for step in (
        [sys.executable, "-m", "venv", str(PEERS_VENV)],
        [str(python), "-m", "pip", "install", "-q", *PEERS_REQUIREMENTS],
    ):
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            return None, f"{' '.join(step[:4])}… failed: {done.stderr.strip()[-300:]}"
    return python, ""


def create_database(server: PostgresServer, name: str) -> str:
    import psycopg

    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    return server.url.rsplit("/", 1)[0] + f"/{name}"


def peer(server: PostgresServer, name: str, jobs: int, concurrency: int) -> dict[str, Any] | str:
    python, why = peers_python()
    if python is None:
        return why
    url = create_database(server, f"bench_{name}")
    done = subprocess.run(
        [str(python), str(PEERS[name]), url, str(jobs), str(concurrency)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode != 0:
        return f"{name} run failed: {done.stderr.strip()[-300:]}"
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return throughput_redis.figures(name, jobs, result["enqueue_s"], result["process_s"])


async def pikkugen_postgres(url: str, jobs: int, concurrency: int, run: int) -> dict[str, Any]:
    backend = PostgresBackend(f"{url}?schema=bench{run}")
    try:
        measured = await throughput_redis.measure(backend, jobs, concurrency)
        return throughput_redis.figures("pikkugen_postgres", jobs, *measured)
    finally:
        await backend.close()


#: The issue's targets, and what this benchmark measured before LISTEN/NOTIFY served the
#: producer's wait and the bulk insert took one JSON text per column (printed beside ours).
TARGET_LATENCY_MS = 10.0
TARGET_BULK_PER_S = 20_000
EARLIER = {"idle_latency_median_ms": "21-25", "bulk_enqueue_per_s": 4_600}


class _Polling(PostgresBackend):
    """The same backend with `JobHandle.result()` polling the job (`NotifiesFinished` hidden):
    the same-run baseline of the NOTIFY wait."""

    watch_finished = None  # type: ignore[assignment]


async def idle_latency(url: str, samples: int, *, notify: bool = True) -> dict[str, float]:
    """Enqueue one job at a time with a worker idle on LISTEN; the time until the producer's
    `JobHandle.result()` returns (woken by NOTIFY, or with `notify=False` polling the job)."""
    schema = "latency" if notify else "latency_poll"
    backend = (PostgresBackend if notify else _Polling)(f"{url}?schema={schema}")
    processor = Processor.from_function("lat", throughput.noop, ProcessorOptions(concurrency=5))
    options = WorkerOptions(processors=[processor])
    queue = TypedQueue("lat", TypeAdapter(throughput.Payload), TypeAdapter(type(None)))
    worker = asyncio.create_task(backend.run_worker(options))
    try:
        await asyncio.sleep(0.5)
        times = []
        for n in range(samples):
            started = time.perf_counter()
            handle = await queue.enqueue(throughput.Payload(n=n), backend=backend)
            await handle.result(timeout=10)
            times.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.005)
        return {
            "median_ms": round(statistics.median(times), 2),
            "p95_ms": round(sorted(times)[int(len(times) * 0.95)], 2),
        }
    finally:
        options.stop.set()
        await worker
        await backend.close()


async def bulk_enqueue(url: str, jobs: int, runs: int = 3) -> dict[str, Any]:
    """Typed `enqueue_many` of `jobs` jobs, 1,000 per call (one statement each): the median
    of `runs` rounds, and this process's CPU per job."""
    backend = PostgresBackend(f"{url}?schema=bulk")
    try:
        await backend.migrate()
        rates, cpus = [], []
        for run in range(runs):
            cpu = time.process_time()
            seconds = await throughput.enqueue_jobs(backend, f"bulk{run}", jobs, "bulk")
            cpus.append((time.process_time() - cpu) / jobs * 1e6)
            rates.append(jobs / seconds)
        return {
            "per_s": round(statistics.median(rates)),
            "best_per_s": round(max(rates)),
            "cpu_us_per_job": round(statistics.median(cpus), 1),
        }
    finally:
        await backend.close()


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"jobs": args.jobs, "concurrency": args.concurrency}
    server = PostgresServer(durable=True, synchronous_commit=False)
    server.start()
    try:
        runs = [
            await pikkugen_postgres(server.url, args.jobs, args.concurrency, run)
            for run in range(args.runs)
        ]
        results["pikkugen_postgres"] = throughput_redis.median(runs)
        results["idle_latency"] = await idle_latency(server.url, 200)
        results["idle_latency_polling"] = await idle_latency(server.url, 200, notify=False)
        bulk = await bulk_enqueue(server.url, args.jobs)
        results["bulk_enqueue_per_s"] = bulk["per_s"]
        results["bulk_enqueue"] = bulk
        if not args.no_peers:
            for name in PEERS:
                results[name] = peer(server, name, args.jobs, args.concurrency)
    finally:
        server.close()
    if REDIS_SERVER is not None:
        with RedisServer() as redis:
            runs = [
                await throughput_redis.pikkugen_redis(redis.url, args.jobs, args.concurrency, r)
                for r in range(args.runs)
            ]
            results["pikkugen_redis"] = throughput_redis.median(runs)
    else:
        results["pikkugen_redis"] = "redis-server is not installed"
    ours = results["pikkugen_postgres"]
    peers = [results.get(n) for n in PEERS if isinstance(results.get(n), dict)]
    best = max(peers, key=lambda p: p["end_to_end_per_s"], default=None)
    results["ratio_vs_best_pg_peer"] = throughput_redis.ratio(ours, best)
    results["ratio_vs_pikkugen_redis"] = throughput_redis.ratio(ours, results["pikkugen_redis"])
    results["targets"] = {
        "idle_latency_median_ms": TARGET_LATENCY_MS,
        "bulk_enqueue_per_s": TARGET_BULK_PER_S,
    }
    results["earlier"] = EARLIER
    results["met"] = {
        "idle_latency": results["idle_latency"]["median_ms"] <= TARGET_LATENCY_MS,
        "bulk_enqueue": results["bulk_enqueue_per_s"] >= TARGET_BULK_PER_S,
    }
    results["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3, help="pikkugen runs (median)")
    parser.add_argument("--no-peers", action="store_true", help="skip Procrastinate, PgQueuer")
    args = parser.parse_args(argv)
    results = asyncio.run(_main(args))
    print(throughput.headline_legend())
    for key, value in results.items():
        if isinstance(value, dict) and "end_to_end_per_s" in value:
            print(
                f"{key:>18}: {value['end_to_end_per_s']:>6} jobs/s enqueue plus process,"
                f" {value['process_per_s']} from worker start to last completion"
                f" (enqueue {value['enqueue_per_s']}/s)"
            )
        elif key == "idle_latency":
            print(
                f"{key:>18}: median {value['median_ms']} ms, p95 {value['p95_ms']} ms"
                f" (NOTIFY; target <= {TARGET_LATENCY_MS} ms; polling in this run: median"
                f" {results['idle_latency_polling']['median_ms']} ms; earlier"
                f" {EARLIER['idle_latency_median_ms']} ms)"
            )
        elif key == "bulk_enqueue":
            print(
                f"{key:>18}: {value['per_s']} jobs/s (best {value['best_per_s']},"
                f" {value['cpu_us_per_job']} us CPU per job; target >= {TARGET_BULK_PER_S};"
                f" earlier {EARLIER['bulk_enqueue_per_s']})"
            )
        elif key not in ("idle_latency_polling", "bulk_enqueue_per_s"):
            print(f"{key:>18}: {value}")
    print(json.dumps(results, sort_keys=True))


if __name__ == "__main__":
    main()
