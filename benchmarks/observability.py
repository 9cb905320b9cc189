"""What observability costs a worker: SQLite jobs/s with Prometheus metrics and OpenTelemetry
tracing on, next to both off, in one run (the goal: at most 5 % slower).

    .venv/bin/python benchmarks/observability.py            # 5000 jobs, 3 rounds each
    .venv/bin/python benchmarks/observability.py --jobs 20000 --rounds 5

"On" is `/metrics` served (pikku_queue.metrics, scraped once per round) and tracing enabled,
every job enqueued in a `send` span and run in a `process` span, measured twice: with the
OpenTelemetry API only (no SDK provider: the cost of pikkugen's own hooks), then with the SDK's
TracerProvider and a BatchSpanProcessor recording every span (handed to an exporter that drops
them, so no network is measured): what a traced deployment pays, the SDK included. "Off" is
metrics not installed and tracing disabled. Rounds alternate off/on on fresh database files;
the best round of each is compared. Prints the figures, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pikku_queue import runner, tracing
from pikku_queue.adapters.sqlite.backend import SqliteBackend
from pikku_queue.backend import WorkerOptions
from pikku_queue.client import TypedQueue, known_queues
from pikku_queue.options import ProcessorOptions
from pikku_queue.processor import Processor
from pydantic import BaseModel, TypeAdapter


class Payload(BaseModel):
    n: int


async def noop(data: Payload) -> None:
    return None


async def io_job(data: Payload) -> None:
    await asyncio.sleep(0.002)  # a job that waits 2 ms on I/O (a query, an HTTP call)


def _sdk() -> str:
    """Install the SDK's provider with a dropping exporter; return what tracing uses."""
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )
    except ImportError:
        return "api-only (no SDK installed: spans are no-ops)"

    class Drop(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Drop()))
    trace.set_tracer_provider(provider)
    return "sdk (BatchSpanProcessor, dropping exporter)"


async def one_round(
    folder: Path, jobs: int, concurrency: int, on: bool, index: int, io: bool = False
) -> float:
    backend = SqliteBackend(folder / f"round{index}-{'on' if on else 'off'}-{io}.db")
    queue = "bench"
    server = None
    if on:
        tracing.enable()
        server = runner.start_metrics(0, "127.0.0.1", backend, [queue])
    else:
        tracing.disable()
    try:
        typed: TypedQueue[Payload, None] = TypedQueue(
            queue, TypeAdapter(Payload), TypeAdapter(None)
        )
        items = [Payload(n=n) for n in range(jobs)]
        for chunk in range(0, jobs, 1000):
            await typed.enqueue_many(items[chunk : chunk + 1000], backend=backend)
        known_queues.pop(queue, None)
        work = io_job if io else noop
        processor = Processor.from_function(queue, work, ProcessorOptions(concurrency=concurrency))
        started = time.perf_counter()
        report = await backend.run_worker(WorkerOptions(processors=[processor], burst=True))
        elapsed = time.perf_counter() - started
        if report.completed != jobs:
            raise RuntimeError(f"expected {jobs} completed, got {report}")
        if server is not None:
            text = await asyncio.to_thread(
                lambda: urllib.request.urlopen(server.url, timeout=10).read().decode()
            )
            line = f'pikku_jobs_completed_total{{queue="{queue}"}} {float(jobs)}'
            if line not in text:
                raise RuntimeError("the /metrics counter does not match the jobs run")
        return jobs / elapsed
    finally:
        if server is not None:
            server.close()
        await backend.close()


async def compare(
    folder: Path, jobs: int, rounds: int, concurrency: int, io: bool
) -> dict[str, Any]:
    off: list[float] = []
    on: list[float] = []
    await one_round(folder, min(jobs, 500), concurrency, False, -1, io)  # warm-up
    for index in range(rounds):
        off.append(await one_round(folder, jobs, concurrency, False, index, io))
        on.append(await one_round(folder, jobs, concurrency, True, index, io))
    best_off, best_on = max(off), max(on)
    slower = (1 - best_on / best_off) * 100
    return {
        "off_jobs_per_s": [round(v) for v in off],
        "on_jobs_per_s": [round(v) for v in on],
        "best_off_jobs_per_s": round(best_off),
        "best_on_jobs_per_s": round(best_on),
        "on_over_off": round(best_on / best_off, 3),
        "slower_percent": round(slower, 1),
        "goal_met": slower <= 5.0,
    }


async def main(jobs: int, rounds: int, concurrency: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        # First with the API only (no SDK provider yet: what pikkugen's own hooks cost), then
        # with the SDK recording every span (what a traced deployment pays, SDK included).
        api_noop = await compare(folder, jobs, rounds, concurrency, io=False)
        provider = _sdk()
        noop_figures = await compare(folder, jobs, rounds, concurrency, io=False)
        io_figures = await compare(folder, jobs, rounds, concurrency, io=True)
    tracing.enable()
    return {
        "benchmark": "observability",
        "backend": "sqlite",
        "jobs": jobs,
        "rounds": rounds,
        "concurrency": concurrency,
        "tracing": provider,
        "api_only_noop": api_noop,
        "noop": noop_figures,
        "io_2ms": io_figures,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    figures = asyncio.run(main(args.jobs, args.rounds, args.concurrency))
    for name, title in (
        ("api_only_noop", "no-op jobs, tracing with the API only (no SDK provider)"),
        ("noop", f"no-op jobs, tracing: {figures['tracing']}"),
        ("io_2ms", f"jobs awaiting 2 ms of I/O, tracing: {figures['tracing']}"),
    ):
        f = figures[name]
        print(f"{title}:")
        print(f"  off (no metrics, no tracing): {f['off_jobs_per_s']} jobs/s")
        print(f"  on  (/metrics + tracing):     {f['on_jobs_per_s']} jobs/s")
        print(
            f"  best: off {f['best_off_jobs_per_s']} jobs/s, on {f['best_on_jobs_per_s']} jobs/s:"
            f" on/off {f['on_over_off']} ({f['slower_percent']} % slower;"
            f" goal <= 5 %: {'met' if f['goal_met'] else 'NOT met'})"
        )
    print(json.dumps(figures))
    sys.exit(0)
