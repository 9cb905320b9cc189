"""Run in a child process by test_tracing_off.py (a tracer provider can be set only once per
process, and test_tracing.py sets the SDK's at import): jobs enqueued and run with the
OpenTelemetry API importable and no provider set, every call into the tracer, the propagator
and the context API counted; then, with `--set-provider`, the SDK's provider is set in the
middle of the run and the next jobs must be traced. Prints one JSON line of what it saw."""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from collections.abc import Callable
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

CALLS: Counter[str] = Counter()


def _count(owner: Any, name: str) -> None:
    original: Callable[..., Any] = getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        CALLS[f"{getattr(owner, '__name__', owner)}.{name}"] += 1
        return original(*args, **kwargs)

    setattr(owner, name, counted)


for cls in (trace.ProxyTracer, trace.NoOpTracer):
    _count(cls, "start_span")
    _count(cls, "start_as_current_span")
_count(trace, "get_tracer")
_count(trace, "set_span_in_context")
_count(trace, "get_current_span")
_count(otel_context, "attach")
_count(otel_context, "detach")
_count(TraceContextTextMapPropagator, "inject")
_count(TraceContextTextMapPropagator, "extract")

from pikku_queue import tracing  # noqa: E402  (after the counters are in place)
from pikku_queue.adapters import connect  # noqa: E402
from pikku_queue.backend import WorkerOptions  # noqa: E402
from pikku_queue.client import TypedQueue  # noqa: E402
from pikku_queue.processor import Processor  # noqa: E402
from pydantic import TypeAdapter  # noqa: E402


async def double(data: int) -> int:
    return data * 2


async def run_jobs(url: str, queue: str, jobs: int) -> dict[str, Any]:
    """Enqueue `jobs` one by one and `jobs` in bulk, run them; what the jobs stored."""
    backend = connect(url)
    try:
        typed: TypedQueue[int, int] = TypedQueue(queue, TypeAdapter(int), TypeAdapter(int))
        handles = [await typed.enqueue(n, backend=backend) for n in range(jobs)]
        handles += await typed.enqueue_many(list(range(jobs)), backend=backend)
        processor = Processor.from_function(queue, double)
        report = await backend.run_worker(WorkerOptions(processors=[processor], burst=True))
        results = [await h.result(timeout=30) for h in handles]
        # The trace context a job carries is in SQLite's `meta` column.
        row = await backend._db.read(  # type: ignore[attr-defined]
            lambda conn: conn.execute(
                "SELECT count(*) FROM jobs WHERE queue = ? AND meta IS NOT NULL", (queue,)
            ).fetchone()
        )
        return {
            "completed": report.completed,
            "results_ok": results == [n * 2 for n in range(jobs)] * 2,
            "carried_context": int(row[0]),
        }
    finally:
        await backend.close()


async def main(url: str, set_provider: bool, jobs: int) -> dict[str, Any]:
    seen: dict[str, Any] = {"recording_before": tracing.recording()}
    seen["before"] = await run_jobs(url, "before", jobs)
    seen["calls_before"] = dict(CALLS)
    if set_provider:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        seen["recording_after"] = tracing.recording()
        seen["after"] = await run_jobs(url, "after", jobs)
        seen["span_names"] = sorted({s.name for s in exporter.get_finished_spans()})
        seen["spans"] = len(exporter.get_finished_spans())
    return seen


if __name__ == "__main__":
    url, jobs = sys.argv[1], int(sys.argv[2])
    print(json.dumps(asyncio.run(main(url, "--set-provider" in sys.argv, jobs))))
