"""The AWS Lambda entry point for SQS event source mappings.

The generated `sqs_lambda.py` is just `handler = make_handler(REGISTRY)`. Each record goes
through the engine with attempt = ApproximateReceiveCount (plus attempts carried by a re-sent
message), and the verdict becomes SQS verbs (`adapters.sqs.settle`):

- Completed: not reported, so Lambda deletes it.
- Retry: ChangeMessageVisibility to the backoff, then reported in `batchItemFailures`, so it
  comes back when the backoff ends (not after the queue's whole visibility timeout).
- DeadLetter: the record (payload, error, reason, attempts) is sent to the dead-letter queue
  and not reported, so Lambda deletes it. If that send fails the message is reported instead:
  the queue's RedrivePolicy still catches it after maxReceiveCount receives.

The batch runs through the push-consumer core (`pikku_queue.push`), which this module only
adapts: one bad record never fails the batch, every record is settled on its own and an
unexpected error is reported for that record only. On a FIFO queue each message group keeps
its order: from a group's first record that is not finished on, that group's records are
reported (made visible again at once) and run again; other groups go on. The attempt timeout
is the processor's `timeout` or Lambda's remaining time (less a margin to settle), whichever
is less.

The backend URL is `$PIKKU_QUEUE_URL` (the SAM template sets it; `pikku_queue.adapters.
resolve_url` orders the sources); a function serves the queue in
`$PIKKU_QUEUE`, else the queue named by the record's eventSourceARN or its `pikku_queue`
attribute.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pikku_queue import tracing
from pikku_queue.adapters import resolve_url
from pikku_queue.adapters.sqs.backend import SQSQueueAdapter, from_url
from pikku_queue.adapters.sqs.client import is_fifo
from pikku_queue.adapters.sqs.messages import InboundMessage, queue_name_from_arn
from pikku_queue.adapters.sqs.settle import FINISHED
from pikku_queue.engine import Engine
from pikku_queue.events import EventBus
from pikku_queue.outcomes import Delivery, Outcome
from pikku_queue.push import PushMessage, consume
from pikku_queue.registry import Registry

logger = logging.getLogger("pikku_queue.lambda")

#: Time kept back from the attempt timeout to settle the batch before Lambda's deadline.
SETTLE_MARGIN_MS = 1_000
QUEUE_ENVIRONMENT_VARIABLE = "PIKKU_QUEUE"


@dataclass
class HandlerState:
    """Built on the first invocation (the cold start) and kept for the container's life: the
    event loop, services, backend and one engine per queue."""

    registry: Registry
    backend_url: str | None = None
    events: EventBus = field(default_factory=EventBus)
    loop: asyncio.AbstractEventLoop | None = None
    backend: SQSQueueAdapter | None = None
    engines: dict[str, Engine] = field(default_factory=dict)

    def start(self) -> tuple[asyncio.AbstractEventLoop, SQSQueueAdapter]:
        if self.loop is not None and self.backend is not None:
            return self.loop, self.backend
        # The one resolution order; `sqs://` (the SDK's region) stands for the registry's URL.
        url = resolve_url(self.backend_url, "sqs://")
        backend = from_url(url)
        loop = asyncio.new_event_loop()
        try:
            services = loop.run_until_complete(self._services())
            processors = self.registry.load()
        except BaseException:
            # A broken deployment (bad import, failing services factory) fails the invocation,
            # so Lambda retries the batch and the redrive policy catches it; nothing leaks.
            loop.run_until_complete(backend.close())
            loop.close()
            raise
        for processor in processors:
            self.engines[processor.name] = Engine(processor, services=services, events=self.events)
            backend.dead_letter_names[processor.name] = processor.options.dead_letter_queue
        self.loop, self.backend = loop, backend
        return loop, backend

    async def _services(self) -> Any:
        return await self.registry.acreate_services()


class SQSLambdaHandler:
    """`handler(event, context)` for an SQS event source mapping with ReportBatchItemFailures.

    A callable object rather than a closure so tests (and a long-lived process hosting it) can
    reach its events and close its loop."""

    def __init__(self, registry: Registry, *, backend_url: str | None = None) -> None:
        self.state = HandlerState(registry, backend_url)

    @property
    def events(self) -> EventBus:
        return self.state.events

    def __call__(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        loop, backend = self.state.start()
        failures = loop.run_until_complete(_handle(self.state, backend, event, context))
        return {"batchItemFailures": [{"itemIdentifier": i} for i in failures]}

    def close(self) -> None:
        """Release the backend and the event loop (Lambda itself never needs this)."""
        loop, backend = self.state.loop, self.state.backend
        if loop is not None:
            if backend is not None:
                loop.run_until_complete(backend.close())
            loop.close()
        self.state.loop = self.state.backend = None


def make_handler(registry: Registry, *, backend_url: str | None = None) -> SQSLambdaHandler:
    """The generated `sqs_lambda.py` calls this once at import: `handler = make_handler(REGISTRY)`."""
    return SQSLambdaHandler(registry, backend_url=backend_url)


def _remaining_ms(context: Any) -> Callable[[], int | None]:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return lambda: None
    return lambda: max(1, int(remaining()) - SETTLE_MARGIN_MS)


def _queue_of(state: HandlerState, backend: SQSQueueAdapter, message: InboundMessage) -> str | None:
    configured = os.environ.get(QUEUE_ENVIRONMENT_VARIABLE)
    if configured:
        return configured
    sqs_name = queue_name_from_arn(message.source_arn)
    if sqs_name is not None:
        for name in state.engines:
            if sqs_name in (name, backend.settings.queue_name(name)):
                return name
    return message.queue


async def _handle(
    state: HandlerState, backend: SQSQueueAdapter, event: Mapping[str, Any], context: Any
) -> list[str]:
    tracing.set_system(backend.url)
    groups: dict[str, list[InboundMessage]] = {}
    failures: list[str] = []
    for record in event.get("Records", ()):
        try:
            message = InboundMessage.from_lambda_record(record)
        except (KeyError, TypeError, ValueError):
            logger.exception("unreadable SQS record; reported failed")
            if isinstance(record, Mapping) and record.get("messageId"):
                failures.append(str(record["messageId"]))
            continue
        queue = _queue_of(state, backend, message)
        if queue is None or queue not in state.engines:
            logger.error("no processor for queue %r (message %s)", queue, message.message_id)
            failures.append(message.message_id)
            continue
        groups.setdefault(queue, []).append(message)
    cap = _remaining_ms(context)
    results = await asyncio.gather(
        *(_handle_queue(backend, state.engines[q], ms, cap) for q, ms in groups.items())
    )
    for failed in results:
        failures.extend(failed)
    return failures


async def _handle_queue(
    backend: SQSQueueAdapter,
    engine: Engine,
    messages: Sequence[InboundMessage],
    cap: Callable[[], int | None],
) -> list[str]:
    """The ids of `messages` that must be reported failed."""
    queue = engine.processor.name
    started = time.monotonic()
    try:
        url = await backend.api.queue_url(queue)
    except Exception:
        logger.exception("%s: the queue URL is unknown; the whole group is reported", queue)
        return [m.message_id for m in messages]
    sink = _Sink(backend, url, engine.processor.options.dead_letter_queue)
    result = await consume(
        engine, [_pushed(m) for m in messages], sink, ordered=is_fifo(url), remaining_ms=cap
    )
    if engine.processor.options.metrics:
        _print_metrics(queue, sink.settled, time.monotonic() - started)
    return [m.message_id for m in result.unfinished]


def _pushed(message: InboundMessage) -> PushMessage:
    return PushMessage(
        message_id=message.message_id,
        body=message.body,
        attempt=message.attempt,
        enqueued_at_ms=message.enqueued_at_ms,
        job_id=message.job_id,
        group=message.group_id,
        handle=message,
        trace_context=message.trace_context,
        record_error=message.invalid,
    )


@dataclass
class _Sink:
    """The push core's verdicts in SQS verbs (`adapters.sqs.settle`); finished records are
    not reported, so Lambda deletes them."""

    backend: SQSQueueAdapter
    url: str
    dead_letter_queue: str | None
    settled: dict[str, int] = field(default_factory=dict)

    async def settle(self, message: PushMessage, delivery: Delivery, outcome: Outcome) -> bool:
        try:
            settled = await self.backend.settler.apply(
                self.url, message.handle, delivery, outcome, self.dead_letter_queue
            )
        except Exception:
            logger.exception("%s job %s: settling failed", delivery.queue, delivery.job_id)
            settled = "kept"
        self.settled[settled] = self.settled.get(settled, 0) + 1
        return settled in FINISHED

    async def give_back(self, message: PushMessage) -> None:
        """Visible again at once rather than after the queue's long visibility timeout: SQS
        still holds the group back while the failed record waits for its backoff, so the
        rest come back right after it, in order."""
        inbound: InboundMessage = message.handle
        try:
            await self.backend.api.set_visibility(self.url, inbound.receipt_handle, 0)
        except Exception:
            logger.warning("%s: could not release record %s", self.url, message.message_id)


def _print_metrics(queue: str, settled: Mapping[str, int], elapsed_s: float) -> None:
    """One CloudWatch Embedded Metric Format line: Lambda's log becomes metrics, no API call."""
    names = ("completed", "retried", "dead_lettered", "failed")
    line = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": "pikku_queue",
                    "Dimensions": [["queue"]],
                    "Metrics": [{"Name": n, "Unit": "Count"} for n in names]
                    + [{"Name": "batch_seconds", "Unit": "Seconds"}],
                }
            ],
        },
        "queue": queue,
        **{n: settled.get(n, 0) for n in names},
        "batch_seconds": round(elapsed_s, 3),
    }
    print(json.dumps(line), flush=True)
