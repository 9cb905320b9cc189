"""What the monitor's `jobs_by_state` index and the `job_counts` triggers cost SQLite throughput.

    .venv/bin/python benchmarks/sqlite_counters.py                      # 20,000 jobs, 7 rounds
    .venv/bin/python benchmarks/sqlite_counters.py --jobs 50000 --enqueue single --preload 200000

Three files, built the same way and measured in the same run, round-robin (each round in
another order, so a load spike from the rest of the machine lands on every variant alike):

    bare      neither the index nor the counters (the backend before the monitor's lists)
    index     `jobs_by_state` (and `jobs_scheduled`), counts by `count(*)` (the backend before
              the counters)
    counters  what the backend ships: the indexes and the triggers that keep `job_counts`

Each round enqueues `--jobs` no-op jobs (`--enqueue`: bulk `enqueue_many` of 1,000, or one
`enqueue` each, 500 at a time) into a file that already holds `--preload` completed jobs of
another queue (so the indexes are that large), then one burst worker processes them
(as `throughput.py` does; the default retention applies, so its deletes are measured too). `bare` and `index` drop what they lack from the file after the backend
opened it, and count as the backend did before the counters (a `count(*)` per state). Prints
the median enqueue/s and process/s of each, and the CPU time this process spent per job (its
SQLite thread included; on a machine other work loads, the steadier figure), the ratios of
each pair, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from pikku_queue.adapters.sqlite.backend import SqliteBackend
from pikku_queue.adapters.sqlite.counters import TRIGGERS
from pikku_queue.backend import WorkerOptions
from pikku_queue.options import ProcessorOptions
from pikku_queue.processor import Processor
from pikku_queue.records import QueueCounts
from throughput import enqueue_jobs, noop

VARIANTS = ("bare", "index", "counters")


class CountedByScan(SqliteBackend):
    """The counts as the backend read them before `job_counts`: a `count(*)` per state."""

    async def counts(self, queue: str) -> QueueCounts:
        now = self._now()

        def read(conn: sqlite3.Connection) -> QueueCounts:
            def one(where: str, *args: Any) -> int:
                sql = f"SELECT count(*) FROM jobs WHERE queue = ? AND {where}"
                return int(conn.execute(sql, (queue, *args)).fetchone()[0])

            return QueueCounts(
                waiting=one("state = 'waiting'") + one("state = 'delayed' AND run_at <= ?", now),
                active=one("state = 'active'"),
                delayed=one("state = 'delayed' AND run_at > ?", now),
                completed=one("state = 'completed'"),
                failed=one("state = 'failed'"),
                dead_lettered=one("state = 'dead_lettered'"),
                scheduled=one("state = 'delayed' AND run_at > ? AND schedule IS NOT NULL", now),
            )

        return await self._db.read(read)

    async def pending_count(self, queue: str) -> int:
        def read(conn: sqlite3.Connection) -> int:
            return int(
                conn.execute(
                    "SELECT (SELECT count(*) FROM jobs WHERE queue = ?1 AND state IN"
                    " ('waiting', 'active')) + (SELECT count(*) FROM jobs WHERE queue = ?1"
                    " AND state = 'delayed' AND schedule IS NULL)",
                    (queue,),
                ).fetchone()[0]
            )

        return await self._db.read(read)

    async def active_count(self, queue: str) -> int:
        return (await self.counts(queue)).active


def preload(path: Path, rows: int) -> None:
    """`rows` completed jobs of another queue, written with plain SQL (the triggers, where
    the file has them, count them)."""
    now = int(time.time() * 1000)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO jobs (queue, id, state, run_at, payload, enqueued_at, finished_at, result)"
        " VALUES ('old', ?, 'completed', ?, '{}', ?, ?, 'null')",
        ((f"old-{n}", now, now, now) for n in range(rows)),
    )
    conn.execute("COMMIT")
    conn.close()


async def strip(backend: SqliteBackend, variant: str) -> None:
    def ddl(conn: sqlite3.Connection) -> None:
        if variant in ("bare", "index"):
            for name in TRIGGERS:
                conn.execute(f"DROP TRIGGER IF EXISTS {name}")
        if variant == "bare":
            conn.execute("DROP INDEX IF EXISTS jobs_by_state")
            conn.execute("DROP INDEX IF EXISTS jobs_scheduled")

    await backend._db.write(ddl)


async def one_round(folder: Path, variant: str, args: argparse.Namespace, n: int) -> dict[str, Any]:
    path = folder / f"{variant}-{n}.db"
    make = SqliteBackend if variant == "counters" else CountedByScan
    await make(path).close()
    preload(path, args.preload)
    backend = make(path)
    queue = "bench"
    try:
        await strip(backend, variant)
        cpu = time.process_time()
        enqueue_s = await enqueue_jobs(backend, queue, args.jobs, args.enqueue)
        enqueue_cpu = time.process_time() - cpu
        processor = Processor.from_function(
            queue, noop, ProcessorOptions(concurrency=args.concurrency)
        )
        cpu, started = time.process_time(), time.perf_counter()
        report = await backend.run_worker(WorkerOptions(processors=[processor], burst=True))
        process_s = time.perf_counter() - started
        process_cpu = time.process_time() - cpu
        if report.completed != args.jobs:
            raise RuntimeError(f"expected {args.jobs} completed, the worker says {report}")
    finally:
        await backend.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return {
        "enqueue_per_s": args.jobs / enqueue_s,
        "process_per_s": args.jobs / process_s,
        # CPU of this process (its SQLite thread included) per job: what the other helpers'
        # load on the machine changes least
        "enqueue_cpu_us": enqueue_cpu / args.jobs * 1e6,
        "process_cpu_us": process_cpu / args.jobs * 1e6,
    }


KEYS = ("enqueue_per_s", "process_per_s", "enqueue_cpu_us", "process_cpu_us")


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="pikku-counters-bench-") as folder:
        for n in range(args.rounds):
            order = VARIANTS[n % 3 :] + VARIANTS[: n % 3]
            for variant in order:
                runs[variant].append(await one_round(Path(folder), variant, args, n))
    figures: dict[str, Any] = {}
    for variant, results in runs.items():
        figures[variant] = {
            key: round(statistics.median(r[key] for r in results), 1) for key in KEYS
        }
    for name, (a, b) in RATIOS.items():
        figures[name] = {key: round(figures[a][key] / figures[b][key], 3) for key in KEYS}
    return figures


#: Each ratio: a's figure over b's (above 1: a is faster in jobs/s, costlier in CPU µs).
RATIOS = {
    "counters_vs_index": ("counters", "index"),
    "counters_vs_bare": ("counters", "bare"),
    "index_vs_bare": ("index", "bare"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--enqueue", default="bulk", choices=["bulk", "gather", "single"])
    parser.add_argument("--preload", type=int, default=0, help="completed jobs already stored")
    args = parser.parse_args()
    load = os.getloadavg()
    figures = asyncio.run(measure(args))
    print(
        f"{args.jobs:,} jobs x {args.rounds} rounds, {args.enqueue} enqueue, concurrency"
        f" {args.concurrency}, {args.preload:,} jobs preloaded; load average"
        f" {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print(
        f"{'variant':<10} {'enqueue/s':>10} {'process/s':>10}"
        f" {'enqueue CPU/job':>16} {'process CPU/job':>16}"
    )
    for variant in VARIANTS:
        f = figures[variant]
        print(
            f"{variant:<10} {f['enqueue_per_s']:>10.0f} {f['process_per_s']:>10.0f}"
            f" {f['enqueue_cpu_us']:>13.1f} µs {f['process_cpu_us']:>13.1f} µs"
        )
    for name in RATIOS:
        f = figures[name]
        print(
            f"{name:<18} jobs/s: enqueue x{f['enqueue_per_s']:.3f} process"
            f" x{f['process_per_s']:.3f}; CPU per job: enqueue x{f['enqueue_cpu_us']:.3f}"
            f" process x{f['process_cpu_us']:.3f}"
        )
    print(
        json.dumps(
            {
                "benchmark": "sqlite_counters",
                "jobs": args.jobs,
                "rounds": args.rounds,
                "enqueue_mode": args.enqueue,
                "concurrency": args.concurrency,
                "preload": args.preload,
                "load_average": [round(x, 2) for x in load],
                **figures,
            },
            sort_keys=True,
        )
    )


if __name__ == "__main__":
    main()
