"""One trace from producer to worker: the enqueue's `send` span and each attempt's `process`
span (its child, linked to it), with the messaging attributes, on SQLite (Redis and SQS have
theirs beside their fixtures). The SDK's in-memory exporter records what a user's exporter
would receive."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from pikku_queue import tracing
from pikku_queue.adapters import catalog, connect
from pikku_queue.backend import Backend, WorkerOptions
from pikku_queue.client import TypedQueue
from pikku_queue.options import ProcessorOptions, RetryOptions
from pikku_queue.processor import Processor
from pydantic import TypeAdapter


class _WhileRecording(SimpleSpanProcessor):
    """Keeps spans only while a test asks for them: the provider is the whole session's (OTel
    takes one per process), and other tests' jobs must not pile up in memory."""

    recording = False

    def on_end(self, span: ReadableSpan) -> None:
        if _WhileRecording.recording:
            super().on_end(span)


_PROVIDER = TracerProvider()
_EXPORTER = InMemorySpanExporter()
_PROVIDER.add_span_processor(_WhileRecording(_EXPORTER))
trace.set_tracer_provider(_PROVIDER)  # once per process: OTel refuses a second provider


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    _EXPORTER.clear()
    _WhileRecording.recording = True
    try:
        yield _EXPORTER
    finally:
        _WhileRecording.recording = False
        _EXPORTER.clear()


async def one_trace(backend: Backend, exporter: InMemorySpanExporter, queue: str) -> None:
    """Enqueue a job whose first attempt fails, run a burst worker, check the spans."""
    failed_once: list[int] = []

    async def work(data: dict[str, int]) -> int:
        with trace.get_tracer("user").start_as_current_span("inside the processor"):
            if not failed_once:
                failed_once.append(1)
                raise ValueError("first attempt fails")
        return data["n"] * 2

    options = ProcessorOptions(retry_options=RetryOptions(attempts=2, delay=10))
    typed: TypedQueue[Any, Any] = TypedQueue(
        queue, TypeAdapter(dict[str, int]), TypeAdapter(int), options
    )
    with trace.get_tracer("user").start_as_current_span("request handler"):
        handle = await typed.enqueue({"n": 21}, backend=backend)
    processor = Processor.from_function(queue, work, options)
    stop = WorkerOptions(processors=[processor], lease_ms=5_000)
    worker = asyncio.create_task(backend.run_worker(stop))
    try:
        if backend.capabilities.supports("results"):
            assert await handle.result(timeout=60) == 42
        else:  # SQS keeps no results: wait for the second attempt's span (bounded)
            for _ in range(600):
                if (
                    len([s for s in exporter.get_finished_spans() if s.name.startswith("process")])
                    == 2
                ):
                    break
                await asyncio.sleep(0.1)
    finally:
        stop.stop.set()
        await worker
    check_trace(exporter.get_finished_spans(), queue, handle.id, backend)


def check_trace(
    finished: tuple[ReadableSpan, ...], queue: str, job_id: str, backend: Backend
) -> None:
    by_name: dict[str, list[ReadableSpan]] = {}
    for span in finished:
        by_name.setdefault(span.name, []).append(span)
    [request] = by_name["request handler"]
    [send] = by_name[f"send {queue}"]
    process = sorted(by_name[f"process {queue}"], key=lambda s: s.attributes["pikku.attempt"])
    assert len(process) == 2
    trace_id = request.context.trace_id
    assert send.kind is SpanKind.PRODUCER
    assert send.parent is not None and send.parent.span_id == request.context.span_id
    assert send.attributes["messaging.destination.name"] == queue
    assert send.attributes["messaging.operation.name"] == "send"
    assert send.attributes["messaging.message.id"] == job_id
    system = catalog.trace_system(backend.url)
    assert send.attributes["messaging.system"] == system
    for attempt, span in enumerate(process, start=1):
        assert span.kind is SpanKind.CONSUMER
        assert span.context.trace_id == trace_id  # one trace, producer to worker
        assert span.parent is not None and span.parent.span_id == send.context.span_id
        assert [link.context.span_id for link in span.links] == [send.context.span_id]
        assert span.attributes["messaging.system"] == system
        assert span.attributes["messaging.destination.name"] == queue
        assert span.attributes["messaging.operation.name"] == "process"
        assert span.attributes["messaging.message.id"] == job_id
        assert span.attributes["pikku.attempt"] == attempt
    assert process[0].attributes["error.type"] == "ValueError"
    assert "error.type" not in process[1].attributes
    inner = by_name["inside the processor"]
    assert {s.parent.span_id for s in inner if s.parent} == {p.context.span_id for p in process}


async def test_one_trace_on_sqlite(tmp_path: Path, spans: InMemorySpanExporter) -> None:
    backend = connect(f"sqlite:///{tmp_path / 'q.db'}")
    try:
        await one_trace(backend, spans, "traced")
    finally:
        await backend.close()


async def test_disabled_tracing_records_nothing(
    tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    tracing.disable()
    try:
        backend = connect(f"sqlite:///{tmp_path / 'q.db'}")
        typed: TypedQueue[Any, Any] = TypedQueue("untraced", TypeAdapter(int), TypeAdapter(int))
        handle = await typed.enqueue(1, backend=backend)

        async def work(data: int) -> int:
            return data

        processor = Processor.from_function("untraced", work)
        await backend.run_worker(WorkerOptions(processors=[processor], burst=True))
        assert await handle.result(timeout=10) == 1
        await backend.close()
    finally:
        tracing.enable()
    assert spans.get_finished_spans() == ()


def test_an_old_database_file_gets_the_meta_column(tmp_path: Path) -> None:
    import sqlite3

    from pikku_queue.adapters.sqlite.schema import SCHEMA, open_connection

    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript(SCHEMA.replace("    meta TEXT,\n", ""))
    old.close()
    conn = open_connection(str(path), 1000)
    assert "meta" in {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
    conn.close()


async def test_a_bulk_enqueue_is_one_send_span_parent_of_every_job(
    tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    """The batch's context is injected once (one span) and carried by every job of it."""
    backend = connect(f"sqlite:///{tmp_path / 'q.db'}")
    typed: TypedQueue[Any, Any] = TypedQueue("bulk", TypeAdapter(dict[str, int]), TypeAdapter(int))

    async def work(data: dict[str, int]) -> int:
        return data["n"]

    try:
        with trace.get_tracer("user").start_as_current_span("request handler"):
            handles = await typed.enqueue_many([{"n": n} for n in range(3)], backend=backend)
        processor = Processor.from_function("bulk", work)
        await backend.run_worker(WorkerOptions(processors=[processor], burst=True))
    finally:
        await backend.close()
    finished = spans.get_finished_spans()
    [send] = [s for s in finished if s.name == "send bulk"]
    assert send.attributes["messaging.batch.message_count"] == 3
    process = [s for s in finished if s.name == "process bulk"]
    assert sorted(str(s.attributes["messaging.message.id"]) for s in process) == sorted(
        h.id for h in handles
    )
    for span in process:
        assert span.context.trace_id == send.context.trace_id
        assert span.parent is not None and span.parent.span_id == send.context.span_id
