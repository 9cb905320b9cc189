"""Redis throughput, five ways on one fresh redis-server: N no-op jobs, concurrency C, enqueue
all, then process all.

    .venv/bin/python benchmarks/throughput_redis.py                # 10,000 jobs, concurrency 50
    .venv/bin/python benchmarks/throughput_redis.py --profile      # + where (a) spends its time

(a) pikkugen on Redis (typed client's bulk enqueue, burst worker), (b) raw `bullmq` (the
Python package) with the same settings (addBulk, Worker), (c) SAQ, in its own venv under the
temp dir (created on first use; it keeps benchmark-only packages out of the project's
environment), (d) pikkugen on its SQLite backend, (e) Node BullMQ (addBulk, Worker; npm
packages of tests/interop/node installed into .npm-cache/interop, as the interop tests do).
Jobs/s two ways, as benchmarks/throughput.py names them: "from worker start to last
completion" (N / process time, the process/s column) and "enqueue plus process" (N / (enqueue
time + process time), the end to end/s column; the median round is chosen by it). The last line
is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import shutil
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

import throughput  # noqa: E402  (benchmarks/throughput.py: the shared pikkugen measurement)
from pikku_queue.backend import Backend, WorkerOptions  # noqa: E402
from pikku_queue.options import ProcessorOptions  # noqa: E402
from pikku_queue.processor import Processor  # noqa: E402
from redis_server import RedisServer  # noqa: E402

REPO = HERE.parent
NODE_SCRIPT = HERE / "node" / "throughput.cjs"
NODE_PACKAGES = REPO / "tests" / "interop" / "node" / "package.json"
NPM_PREFIX = REPO / ".npm-cache" / "interop"
SAQ_VENV = Path(tempfile.gettempdir()) / "pikkugen-bench-saq-venv"
#: saq 0.26.4 imports typing_extensions without declaring it.
SAQ_REQUIREMENTS = ("saq[redis]==0.26.4", "typing_extensions")

SAQ_SCRIPT = """
import asyncio, json, sys, time
from saq import Queue, Worker

async def noop(ctx, *, n):
    return None

async def main(url, jobs, concurrency, name):
    queue = Queue.from_url(url, name=name)
    await queue.connect()
    started = time.perf_counter()
    for chunk in range(0, jobs, 500):
        await asyncio.gather(*(queue.enqueue("noop", n=n) for n in range(chunk, min(jobs, chunk + 500))))
    enqueue_s = time.perf_counter() - started
    worker = Worker(queue, functions=[noop], concurrency=concurrency, burst=True, dequeue_timeout=1)
    started = time.perf_counter()
    await worker.start()
    process_s = time.perf_counter() - started
    left = await queue.count("incomplete")
    await queue.disconnect()
    if left:
        raise SystemExit(f"{left} SAQ jobs left incomplete")
    print(json.dumps({"enqueue_s": enqueue_s, "process_s": process_s}))

asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]))
"""


def figures(
    name: str, jobs: int, enqueue_s: float, process_s: float, cpu_s: float | None = None
) -> dict[str, Any]:
    """`cpu_s`: CPU time of this process while the worker ran (Redis's own not included); per
    job it shows our cost apart from the machine's noise."""
    return {
        "cpu_us_per_job": None if cpu_s is None else round(cpu_s / jobs * 1e6),
        "name": name,
        "enqueue_s": round(enqueue_s, 3),
        "process_s": round(process_s, 3),
        "enqueue_per_s": round(jobs / enqueue_s),
        "process_per_s": round(jobs / process_s),
        "end_to_end_per_s": round(jobs / (enqueue_s + process_s)),
    }


async def measure(backend: Backend, jobs: int, concurrency: int) -> tuple[float, float, float]:
    """benchmarks/throughput.py's measurement (typed client, bulk enqueue, burst worker),
    without its event-loop-lag probe: a 1 ms timer running beside the worker costs pikkugen
    CPU that the raw bullmq and SAQ runs would not pay."""
    enqueue_s = await throughput.enqueue_jobs(backend, "bench", jobs, "bulk")
    processor = Processor.from_function(
        "bench", throughput.noop, ProcessorOptions(concurrency=concurrency)
    )
    started, cpu = time.perf_counter(), time.process_time()
    report = await backend.run_worker(WorkerOptions(processors=[processor], burst=True))
    process_s, cpu_s = time.perf_counter() - started, time.process_time() - cpu
    counts = await backend.counts("bench")
    # The backend's count of completed jobs is not checked: retention may prune them (SQLite
    # keeps the latest 10,000); nothing may be left waiting, active or delayed.
    if report.completed != jobs or counts.waiting or counts.active or counts.delayed:
        raise RuntimeError(f"expected {jobs} completed, worker says {report}, backend {counts}")
    return enqueue_s, process_s, cpu_s


async def pikkugen_redis(url: str, jobs: int, concurrency: int, run: int = 0) -> dict[str, Any]:
    from pikku_queue.adapters.redis.backend import RedisBackend

    backend = RedisBackend(f"{url}?prefix=bench-a{run}")
    try:
        return figures("pikkugen_redis", jobs, *await measure(backend, jobs, concurrency))
    finally:
        await backend.close()


def _worker_process(
    url: str, prefix: str, concurrency: int, start_at: float
) -> tuple[int, float, float, float]:
    """One worker process of the --processes mode: a burst worker started at the wall-clock
    time `start_at` (every process is up and imported by then, so interpreter start is not
    counted); (completed, CPU seconds, wall start, wall end)."""
    from pikku_queue.adapters.redis.backend import RedisBackend

    async def run() -> int:
        backend = RedisBackend(f"{url}?prefix={prefix}")
        processor = Processor.from_function(
            "bench", throughput.noop, ProcessorOptions(concurrency=concurrency)
        )
        try:
            report = await backend.run_worker(WorkerOptions(processors=[processor], burst=True))
        finally:
            await backend.close()
        return report.completed

    time.sleep(max(0.0, start_at - time.time()))
    started, cpu = time.time(), time.process_time()
    completed = asyncio.run(run())
    return completed, time.process_time() - cpu, started, time.time()


async def pikkugen_redis_processes(
    url: str, jobs: int, concurrency: int, processes: int, run: int = 0
) -> dict[str, Any]:
    """Enqueue in this process, then `processes` worker processes drain the queue at once."""
    import multiprocessing

    from pikku_queue.adapters.redis.backend import RedisBackend

    prefix = f"bench-p{run}"
    backend = RedisBackend(f"{url}?prefix={prefix}")
    try:
        enqueue_s = await throughput.enqueue_jobs(backend, "bench", jobs, "bulk")
        context = multiprocessing.get_context("spawn")
        with context.Pool(processes) as pool:
            start_at = time.time() + 3.0  # time enough for the processes to start and import
            work = [(url, prefix, concurrency, start_at)] * processes
            results = pool.starmap(_worker_process, work)
        process_s = max(r[3] for r in results) - min(r[2] for r in results)
        counts = await backend.counts("bench")
    finally:
        await backend.close()
    completed = sum(r[0] for r in results)
    if completed != jobs or counts.completed != jobs:
        raise RuntimeError(f"expected {jobs} completed, workers say {completed}, {counts}")
    cpu_s = sum(r[1] for r in results)
    return figures(f"pikkugen_redis_x{processes}", jobs, enqueue_s, process_s, cpu_s)


async def raw_bullmq(url: str, jobs: int, concurrency: int, run: int = 0) -> dict[str, Any]:
    from bullmq import Queue, Worker

    opts = {"connection": url, "prefix": f"bench-b{run}"}
    queue = Queue("bench", opts)
    started = time.perf_counter()
    for chunk in range(0, jobs, 1000):
        await queue.addBulk(
            [{"name": "bench", "data": {"n": n}} for n in range(chunk, min(jobs, chunk + 1000))]
        )
    enqueue_s = time.perf_counter() - started
    done = asyncio.Event()
    completed = 0

    def on_completed(*_: Any) -> None:
        nonlocal completed
        completed += 1
        if completed == jobs:
            done.set()

    async def noop(job: Any, token: str) -> None:
        return None

    started, cpu = time.perf_counter(), time.process_time()
    worker = Worker("bench", noop, {**opts, "concurrency": concurrency})
    worker.on("completed", on_completed)
    await done.wait()
    process_s, cpu_s = time.perf_counter() - started, time.process_time() - cpu
    await worker.close()
    counts = await queue.getJobCounts("completed")
    await queue.close()
    if counts["completed"] != jobs:
        raise RuntimeError(f"bullmq completed {counts} of {jobs}")
    return figures("bullmq", jobs, enqueue_s, process_s, cpu_s)


def saq_python() -> tuple[Path | None, str]:
    """The SAQ venv's python, created on first use; (None, why) when that is impossible."""
    python = SAQ_VENV / "bin" / "python"
    check = [str(python), "-c", "import saq, redis"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python, ""
    steps = [
        [sys.executable, "-m", "venv", str(SAQ_VENV)],
        [str(python), "-m", "pip", "install", "-q", *SAQ_REQUIREMENTS],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            return None, f"{' '.join(step[:4])}… failed: {done.stderr.strip()[-300:]}"
    return python, ""


def saq(url: str, jobs: int, concurrency: int, run: int = 0) -> dict[str, Any] | str:
    python, why = saq_python()
    if python is None:
        return why
    done = subprocess.run(
        [str(python), "-c", SAQ_SCRIPT, url, str(jobs), str(concurrency), f"bench-saq-{run}"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        return f"SAQ run failed: {done.stderr.strip()[-300:]}"
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return figures("saq", jobs, result["enqueue_s"], result["process_s"])


def node_modules() -> tuple[Path | None, str]:
    """The node_modules holding tests/interop/node's pinned bullmq and ioredis (installed on
    first use, like the interop tests do); (None, why) when that is impossible."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        return None, "node and npm are not on PATH"
    wanted = json.loads(NODE_PACKAGES.read_text())["dependencies"]
    modules = NPM_PREFIX / "node_modules"

    def installed(package: str) -> str | None:
        manifest = modules / package / "package.json"
        return json.loads(manifest.read_text())["version"] if manifest.is_file() else None

    if any(installed(name) != version for name, version in wanted.items()):
        NPM_PREFIX.mkdir(parents=True, exist_ok=True)
        shutil.copy(NODE_PACKAGES, NPM_PREFIX / "package.json")
        done = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--no-save", "--prefix", str(NPM_PREFIX)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            return None, f"npm install failed: {done.stderr.strip()[-300:]}"
    return modules, ""


def node_bullmq(port: int, jobs: int, concurrency: int, run: int = 0) -> dict[str, Any] | str:
    modules, why = node_modules()
    if modules is None:
        return why
    connection = json.dumps({"host": "127.0.0.1", "port": port, "db": 0})
    node = shutil.which("node") or "node"
    done = subprocess.run(
        [node, str(NODE_SCRIPT), connection, f"bench-e{run}", "bench", str(jobs), str(concurrency)],
        capture_output=True,
        text=True,
        timeout=600,
        env={"NODE_PATH": str(modules), "PATH": "/usr/bin:/bin"},
    )
    if done.returncode != 0:
        return f"Node BullMQ run failed: {done.stderr.strip()[-300:]}"
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return figures("node_bullmq", jobs, result["enqueue_s"], result["process_s"], result["cpu_s"])


async def pikkugen_sqlite(
    folder: Path, jobs: int, concurrency: int, run: int = 0
) -> dict[str, Any]:
    from pikku_queue.adapters.sqlite.backend import SqliteBackend

    backend = SqliteBackend(folder / f"bench-{run}.db")
    try:
        return figures("pikkugen_sqlite", jobs, *await measure(backend, jobs, concurrency))
    finally:
        await backend.close()


def server_cpu_s(server: RedisServer) -> float | None:
    """redis-server's CPU seconds so far (user + system, from /proc), None where unreadable."""
    process = getattr(server, "process", None)
    try:
        fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (AttributeError, OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def median(values: list[dict[str, Any] | str | None]) -> dict[str, Any] | str | None:
    """The round with the median end-to-end rate (the upper one of two for an even count)."""
    measured = sorted(
        (v for v in values if isinstance(v, dict)), key=lambda v: v["end_to_end_per_s"]
    )
    if not measured:
        return values[0] if values else None
    return measured[len(measured) // 2]


def ratio(
    a: dict[str, Any] | str | None, b: dict[str, Any] | str | None, key: str = "end_to_end_per_s"
) -> float | None:
    """a / b of one figure (default: enqueue plus process)."""
    if not isinstance(a, dict) or not isinstance(b, dict):
        return None
    return round(a[key] / b[key], 2)


def profile_pikkugen(url: str, jobs: int, concurrency: int) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    asyncio.run(pikkugen_redis(url, jobs, concurrency, run=99))
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
    return out.getvalue()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5, help="rounds (odd: a true median)")
    parser.add_argument("--no-saq", action="store_true", help="skip SAQ (no venv is created)")
    parser.add_argument("--profile", action="store_true", help="cProfile one more run of (a)")
    parser.add_argument(
        "--processes",
        type=int,
        default=0,
        help="also (f): pikkugen with this many worker processes (reported per core)",
    )
    args = parser.parse_args(argv)
    n, c = args.jobs, args.concurrency
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "redis").mkdir()
        server = RedisServer(Path(folder) / "redis").start()
        url = server.url
        runs: dict[str, list[dict[str, Any] | str | None]] = {
            "pikkugen_redis": [],
            "bullmq": [],
            "saq": [],
            "pikkugen_sqlite": [],
            "node_bullmq": [],
        }
        if args.processes:
            runs["pikkugen_redis_processes"] = []
        contenders: dict[str, Callable[[int], dict[str, Any] | str | None]] = {
            "pikkugen_redis": lambda run: asyncio.run(pikkugen_redis(url, n, c, run)),
            "bullmq": lambda run: asyncio.run(raw_bullmq(url, n, c, run)),
            "saq": lambda run: None if args.no_saq else saq(url, n, c, run),
            "pikkugen_sqlite": lambda run: asyncio.run(pikkugen_sqlite(Path(folder), n, c, run)),
            "node_bullmq": lambda run: node_bullmq(server.port, n, c, run),
        }
        if args.processes:
            contenders["pikkugen_redis_processes"] = lambda run: asyncio.run(
                pikkugen_redis_processes(url, n, c, args.processes, run)
            )
        order = list(contenders)
        for run in range(args.repeat):
            # Interleaved rounds, each starting with the next contender: a noisy neighbour or
            # Redis's own housekeeping (AOF fsync, rewrite) then hits no one systematically.
            for name in order[run % len(order) :] + order[: run % len(order)]:
                before = server_cpu_s(server)
                result = contenders[name](run)
                after = server_cpu_s(server)
                if isinstance(result, dict):  # Redis's CPU over the round (enqueue + process)
                    result["redis_cpu_us_per_job"] = (
                        None
                        if before is None or after is None
                        else round((after - before) / n * 1e6)
                    )
                runs[name].append(result)
        results = {name: median(values) for name, values in runs.items()}
        profile = profile_pikkugen(url, n, c) if args.profile else ""
        server.stop()
        redis_version = (
            subprocess.run(["redis-server", "--version"], capture_output=True, text=True)
            .stdout.split()[2]
            .removeprefix("v=")
        )
    print(
        f"{n} no-op jobs, concurrency {c}, enqueue then process, redis-server {redis_version}, "
        f"median of {args.repeat} interleaved rounds"
    )
    print(
        f"{'':18}{'enqueue/s':>11}{'process/s':>11}{'end to end/s':>14}{'worker CPU µs/job':>19}"
        f"{'redis CPU µs/job':>18}   end to end/s per round"
    )
    print(throughput.headline_legend())
    for name, result in results.items():
        if isinstance(result, dict):
            cpu = result["cpu_us_per_job"] if result["cpu_us_per_job"] is not None else "-"
            redis_cpu = result.get("redis_cpu_us_per_job")
            redis_cpu = "-" if redis_cpu is None else redis_cpu
            rounds = " ".join(
                str(r["end_to_end_per_s"]) if isinstance(r, dict) else "-" for r in runs[name]
            )
            print(
                f"{name:18}{result['enqueue_per_s']:>11}{result['process_per_s']:>11}"
                f"{result['end_to_end_per_s']:>14}{cpu:>19}{redis_cpu:>18}   {rounds}"
            )
        else:
            print(f"{name:18}  not measured: {result or 'skipped (--no-saq)'}")
    a, b, c_, d, e = (
        results[k] for k in ("pikkugen_redis", "bullmq", "saq", "pikkugen_sqlite", "node_bullmq")
    )
    print(f"a/e pikkugen_redis / node     {ratio(a, e)}  (target >= 0.9)")
    print(f"a/e from worker start only    {ratio(a, e, 'process_per_s')}  (target >= 0.9)")
    print(f"a/b pikkugen_redis / bullmq   {ratio(a, b)}  (target >= 2.0)")
    print(f"a/c pikkugen_redis / saq      {ratio(a, c_)}  (target >= 1.0)")
    print(f"d/b pikkugen_sqlite / bullmq  {ratio(d, b)}  (target >= 1.0)")
    cores = os.cpu_count() or 1
    per_core = None
    f = results.get("pikkugen_redis_processes")
    if isinstance(f, dict):
        per_core = round(f["end_to_end_per_s"] / min(args.processes, cores))
        print(
            f"f   {args.processes} worker processes on {cores} cores: {f['end_to_end_per_s']} "
            f"jobs/s end to end, {per_core} per core used; f/e {ratio(f, e)}"
        )
    if profile:
        print(profile)
    print(
        json.dumps(
            {
                "n": n,
                "concurrency": c,
                "pikkugen_redis_over_node": ratio(a, e),
                "pikkugen_redis_over_node_from_worker_start": ratio(a, e, "process_per_s"),
                "from_worker_start_per_s": {
                    key: value["process_per_s"]
                    for key, value in results.items()
                    if isinstance(value, dict)
                },
                "worker_cpu_us_per_job": {
                    key: value["cpu_us_per_job"]
                    for key, value in results.items()
                    if isinstance(value, dict)
                },
                "redis_cpu_us_per_job": {
                    key: value.get("redis_cpu_us_per_job")
                    for key, value in results.items()
                    if isinstance(value, dict)
                },
                "pikkugen_redis_over_bullmq": ratio(a, b),
                "processes": args.processes or None,
                "processes_per_core": per_core,
                **{
                    key: (value["end_to_end_per_s"] if isinstance(value, dict) else None)
                    for key, value in results.items()
                },
            }
        )
    )


if __name__ == "__main__":
    main()
