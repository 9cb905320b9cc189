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
