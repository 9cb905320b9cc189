"""One trace from producer to worker on SQS: the trace context rides in the `traceparent`
message attribute, the body stays the plain JSON payload; the Lambda handler links its
attempts the same way (it reads the same attributes from the event record)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "observability"))

from pikku_queue.adapters.sqs.messages import InboundMessage
from test_tracing import one_trace, spans  # noqa: F401  (the fixture)

pytestmark = pytest.mark.sqs


async def test_one_trace_on_sqs(backend: Any, queues: Any, spans) -> None:  # noqa: F811
    queues.create("traced")
    await one_trace(backend, spans, "traced")


def test_a_lambda_record_carries_the_trace_context() -> None:
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    record = {
        "messageId": "m1",
        "receiptHandle": "r1",
        "body": "{}",
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1"},
        "messageAttributes": {"traceparent": {"stringValue": parent, "dataType": "String"}},
    }
    message = InboundMessage.from_lambda_record(record)
    delivery, _ = message.delivery("q")
    assert delivery.trace_context == {"traceparent": parent}


async def traced_job(data: dict[str, int]) -> int:
    return data["n"]


def test_the_lambda_handler_continues_the_enqueue_trace(
    queues: Any,
    backend_url: str,
    spans: Any,  # noqa: F811
) -> None:
    import asyncio

    from opentelemetry import trace
    from pikku_queue.adapters.sqs.backend import from_url
    from pikku_queue.adapters.sqs.lambda_handler import make_handler
    from pikku_queue.client import TypedQueue
    from pikku_queue.options import ProcessorOptions
    from pikku_queue.registry import QueueEntry, Registry
    from pydantic import TypeAdapter
    from sqs_support import FakeLambdaContext

    queues.create("lambda-traced")

    async def enqueue() -> str:
        backend = from_url(backend_url)
        typed: TypedQueue[Any, Any] = TypedQueue(
            "lambda-traced", TypeAdapter(dict[str, int]), TypeAdapter(int)
        )
        with trace.get_tracer("user").start_as_current_span("request handler"):
            handle = await typed.enqueue({"n": 5}, backend=backend)
        await backend.close()
        return handle.id

    job_id = asyncio.run(enqueue())
    entry = QueueEntry(
        name="lambda-traced", function=f"{__name__}.traced_job", options=ProcessorOptions()
    )
    registry = Registry([entry])
    handler = make_handler(registry, backend_url=backend_url)
    try:
        event = queues.lambda_event("lambda-traced", queues.receive("lambda-traced", wait=2))
        assert event["Records"][0]["messageAttributes"]["traceparent"]["stringValue"]
        response = handler(event, FakeLambdaContext())
    finally:
        handler.close()
    assert response["batchItemFailures"] == []
    finished = {s.name: s for s in spans.get_finished_spans()}
    send, process = finished["send lambda-traced"], finished["process lambda-traced"]
    assert process.context.trace_id == finished["request handler"].context.trace_id
    assert process.parent is not None and process.parent.span_id == send.context.span_id
    assert process.attributes["messaging.system"] == "aws_sqs"
    assert process.attributes["messaging.message.id"] == job_id
