"""Soak: 1,000,000 jobs through one SQLite file; the file and the worker must stay flat.

    .venv/bin/python benchmarks/soak_sqlite.py              # the full million
    .venv/bin/python benchmarks/soak_sqlite.py --jobs 300000

Jobs go through in windows of `--window` (100,000): enqueue a window (`enqueue_many`), drain
it with one burst worker, read the queue's stats the way a worker's display does
(`QueueMonitor.get_stats`, 5-minute window), then print the database size (file + WAL) and the
process's RSS. With retention (the embedded default: the last 10,000 completed jobs per
queue) both must be flat after the first window. The baseline, measured in the same run, is
the same loop with retention off (`remove_on_complete=false`, what every version before had)
for `--baseline-windows` windows: its file grows by a window's worth of rows each time.
The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pikku_queue.adapters.sqlite.backend import SqliteBackend
from pikku_queue.backend import WorkerOptions
from pikku_queue.monitor import QueueMonitor
from pikku_queue.options import ProcessorOptions
from pikku_queue.processor import Processor
from pikku_queue.records import EnqueueRequest

QUEUE = "soak"
ENQUEUE_BATCH = 10_000


async def noop(data: dict[str, Any]) -> None:
    return None


def rss_mb() -> float:
    """The current resident set size (not the peak), from /proc."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3  # KiB on Linux


def db_mb(path: Path) -> float:
    files = [path, path.with_name(path.name + "-wal")]
    return sum(f.stat().st_size for f in files if f.exists()) / 1e6


async def soak(path: Path, jobs: int, window: int, retention: bool, label: str) -> dict[str, Any]:
    keep: dict[str, Any] = {} if retention else {"remove_on_complete": False}
    backend = SqliteBackend(path, **keep)
    processor = Processor.from_function(QUEUE, noop, ProcessorOptions(concurrency=50))
    monitor = QueueMonitor([QUEUE], backend)
    rows: list[dict[str, Any]] = []
    done = 0
    started = time.perf_counter()
    try:
        while done < jobs:
            size = min(window, jobs - done)
            for first in range(0, size, ENQUEUE_BATCH):
                batch = min(ENQUEUE_BATCH, size - first)
                await backend.enqueue_many(
                    [
                        EnqueueRequest(
                            queue=QUEUE, payload={"n": done + first + i, "pad": "x" * 40}
                        )
                        for i in range(batch)
                    ]
                )
            window_started = time.perf_counter()
            report = await backend.run_worker(WorkerOptions(processors=[processor], burst=True))
            elapsed = time.perf_counter() - window_started
            if report.completed != size:
                raise RuntimeError(f"window of {size}: the worker reports {report}")
            done += size
            stats = await monitor.get_stats(QUEUE)
            row = {
                "jobs": done,
                "db_mb": round(db_mb(path), 2),
                "rss_mb": round(rss_mb(), 1),
                "peak_rss_mb": round(peak_rss_mb(), 1),
                "process_per_s": round(size / elapsed),
                "kept_completed": stats.completed,
            }
            rows.append(row)
            print(
                f"{label:9} {done:>9,} jobs  db {row['db_mb']:8.2f} MB  rss {row['rss_mb']:6.1f} MB"
                f"  (peak {row['peak_rss_mb']:6.1f})  {row['process_per_s']:>6}/s"
                f"  kept {stats.completed:,}",
                flush=True,
            )
    finally:
        await backend.close()
    return {"rows": rows, "seconds": round(time.perf_counter() - started, 1)}


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--window", type=int, default=100_000)
    parser.add_argument("--baseline-windows", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base_jobs = min(args.jobs, args.window * args.baseline_windows)
        baseline = await soak(Path(tmp) / "baseline.db", base_jobs, args.window, False, "baseline")
        run = await soak(Path(tmp) / "soak.db", args.jobs, args.window, True, "retention")
    rows, base = run["rows"], baseline["rows"]
    first, last = rows[0], rows[-1]
    per_window = (base[-1]["db_mb"] - base[0]["db_mb"]) / max(len(base) - 1, 1) if base else 0.0
    result = {
        "benchmark": "soak_sqlite",
        "jobs": args.jobs,
        "window": args.window,
        "seconds": run["seconds"],
        "db_mb_first_window": first["db_mb"],
        "db_mb_last": last["db_mb"],
        "db_mb_max_after_first": max(r["db_mb"] for r in rows[1:]) if rows[1:] else first["db_mb"],
        "rss_mb_first_window": first["rss_mb"],
        "rss_mb_last": last["rss_mb"],
        "peak_rss_mb": last["peak_rss_mb"],
        "db_growth_last_vs_first": round(last["db_mb"] / first["db_mb"], 3),
        "rss_growth_last_vs_first": round(last["rss_mb"] / first["rss_mb"], 3),
        "process_per_s_first": first["process_per_s"],
        "process_per_s_last": last["process_per_s"],
        "baseline_no_retention_db_mb": base[-1]["db_mb"] if base else None,
        "baseline_db_mb_growth_per_window": round(per_window, 2),
        "baseline_vs_retention_db_at_same_jobs": round(
            base[-1]["db_mb"] / rows[len(base) - 1]["db_mb"], 2
        )
        if base
        else None,
    }
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
