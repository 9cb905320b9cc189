"""The consumer face on Cloudflare: a Worker's `queue(batch)` through the push core.

The generated `cloudflare_worker.py` holds one `CloudflareWorker` for the isolate and calls
`queue(batch, env)` and `scheduled(controller, env)` from its `Default(WorkerEntrypoint)`.

Each batch is dispatched by `batch.queue` to that queue's engine through `pikku_queue.push`,
and every message gets exactly one explicit verdict, so one failing job never redelivers the
others (Cloudflare's first ack/retry on a message wins):

    Completed   → message.ack()
    Retry       → message.retry(delaySeconds=ceil(delay_ms / 1000)) (at most 12 h); a backoff
                  of 0 is `retry()` (Cloudflare takes a positive delay; without one it waits
                  the consumer's `retry_delay`)
    DeadLetter  → the DeadLetterRecord is sent to the processor's dead-letter queue binding,
                  then message.ack(). A verdict is final: if the record cannot be sent (after
                  `RECORD_SEND_TRIES` tries), the message is still acked, counted failed and the
                  record logged, never retried, so the processor never runs again because a send
                  failed. With no dead-letter queue, or for a job that is itself a dead-letter
                  record (`records.dead_letter_target`), the job is acked and counted failed.

One dead-letter format: `<queue>-dlq` (or the processor's `dead_letter_queue`) holds
pikkugen's records only. Cloudflare's own `dead_letter_queue` setting of a consumer, where
Cloudflare moves a message it retried `max_retries` times without an answer (every invocation
crashed or ran out of time), names a separate queue, `<queue>-stalled`, which this Worker
consumes: each message there becomes a record with reason `stalled`, sent on to the
dead-letter queue (a record that cannot be sent is retried there, which runs no processor).

Every field the consumer reads of a message (id, attempts, timestamp, body) may be anything a
foreign producer put there: one it cannot read gives that message its own verdict at once
(`push_message`), and its neighbours run.

The attempt is `message.attempts` (1-based). A message of a queue this Worker has no
processor for, or one that crashed the consumer, is retried. A broken deployment (a failing
services factory) raises, so Cloudflare retries the whole batch. The attempt timeout is the
processor's `timeout` or what `InvocationBudget` says is left of the invocation's 15-minute
wall clock, whichever is less.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pikku_queue.adapters.cloudflare import js
from pikku_queue.adapters.cloudflare.backend import (
    CONTENT_TYPE,
    CloudflareQueueAdapter,
    IsolateStats,
    fits,
)
from pikku_queue.adapters.cloudflare.limits import (
    CONSUMER_WALL_CLOCK_MS,
    MAX_DELAY_SECONDS,
    delay_seconds,
)
from pikku_queue.client import set_default_backend
from pikku_queue.engine import Engine
from pikku_queue.events import EventBus
from pikku_queue.fields import InvalidRecord, shown
from pikku_queue.outcomes import (
    Cancelled,
    Completed,
    DeadLetter,
    Delivery,
    ErrorInfo,
    Outcome,
    Retry,
)
from pikku_queue.payloads import dead_letter_forms, minimal_error
from pikku_queue.push import PushMessage, consume
from pikku_queue.records import DeadLetterRecord, dead_letter_target
from pikku_queue.registry import Registry

logger = logging.getLogger("pikku_queue.cloudflare")

#: Time kept back from the wall clock to answer every message before the deadline.
SETTLE_MARGIN_MS = 1_000
#: Sends of one dead-letter record before the job ends failed (the record logged instead),
#: with these pauses between them, seconds.
RECORD_SEND_TRIES = 3
RECORD_SEND_PAUSES_S = (0.2, 1.0)
#: How long a `<queue>-stalled` message whose record could not be sent waits to be tried again.
STALLED_RETRY_SECONDS = 60
#: The error type of a body that is no JSON data (an `invalid_payload` verdict).
UNREADABLE_BODY = "UnreadableBodyError"


@dataclass
class InvocationBudget:
    """What is left of one consumer invocation's 15-minute wall clock, for capping attempts.

    Inside a Worker every clock (`Date.now()`, which Pyodide's `time` functions read) stands
    still while code computes and catches up at the next I/O (a send, a fetch, a timer), and
    the CPU time an invocation used cannot be read at all. So this budget is the wall clock
    as last seen, read when an attempt starts: time spent computing since the last I/O may
    not be in it yet (it is an upper bound of what is left, never a promise), and a processor
    that computes without awaiting cannot be interrupted by any timeout (Pyodide has no
    threads: a sync processor's `timeout` is a PK801). CPU time is bounded by Cloudflare
    alone, by the consumer's `limits.cpu_ms` (30 s by default), which the generated wrangler
    config raises to the largest `timeout` of its processors (at most 5 minutes); an
    invocation killed at that limit answers none of its unanswered messages, and Cloudflare
    retries them (then `<queue>-stalled`)."""

    started: float
    wall_ms: int = CONSUMER_WALL_CLOCK_MS
    margin_ms: int = SETTLE_MARGIN_MS
    clock: Callable[[], float] = time.time

    @classmethod
    def start(cls, clock: Callable[[], float] = time.time) -> InvocationBudget:
        return cls(started=clock(), clock=clock)

    def remaining_ms(self) -> int:
        elapsed_ms = (self.clock() - self.started) * 1000
        return max(1, int(self.wall_ms - elapsed_ms - self.margin_ms))


def retry_seconds(delay_ms: int) -> int:
    seconds = delay_seconds(delay_ms)
    if seconds > MAX_DELAY_SECONDS:
        logger.warning(
            "retry backoff of %d ms exceeds Cloudflare's longest delay; using %d s",
            delay_ms,
            MAX_DELAY_SECONDS,
        )
    return min(seconds, MAX_DELAY_SECONDS)


def retry(message: Any, delay_ms: int = 0) -> None:
    """`message.retry()`, with `delaySeconds` only when it is positive."""
    seconds = retry_seconds(delay_ms)
    if seconds > 0:
        message.retry(delaySeconds=seconds)
    else:
        message.retry()


async def send_record(backend: CloudflareQueueAdapter, dlq: str, record: DeadLetterRecord) -> bool:
    """Send `record` to `dlq` in the first form of the total writer that fits a message
    (`payloads.dead_letter_forms`), up to `RECORD_SEND_TRIES` times; False, the record
    logged with a minimal error, when no form fits or every send failed. Never raises."""
    delivery = f"{record.queue} job {record.job_id}"
    text = next((t for t in dead_letter_forms(record, ascii=True) if fits(t)), None)
    if text is None:
        logger.error(
            "%s: no form of its dead-letter record fits a message; it ends failed: %s",
            delivery,
            minimal_error(record.error),
        )
        return False
    for attempt in range(1, RECORD_SEND_TRIES + 1):
        try:
            await backend.binding(dlq).send(text, contentType=CONTENT_TYPE)
            return True
        except Exception as exc:
            logger.warning(
                "%s: sending its dead-letter record to %r failed (try %d of %d): %s",
                delivery,
                dlq,
                attempt,
                RECORD_SEND_TRIES,
                exc,
            )
            if attempt < RECORD_SEND_TRIES:
                await asyncio.sleep(RECORD_SEND_PAUSES_S[attempt - 1])
    logger.error("%s: its dead-letter record could not be sent to %r: %s", delivery, dlq, text)
    return False


class _Sink:
    """Applies verdicts to Cloudflare `Message`s."""

    def __init__(self, backend: CloudflareQueueAdapter, dead_letter_queue: str | None) -> None:
        self.backend = backend
        self.dead_letter_queue = dead_letter_queue

    async def settle(self, message: PushMessage, delivery: Delivery, outcome: Outcome) -> bool:
        handle = message.handle
        stats = self.backend.stats
        if isinstance(outcome, Completed):
            handle.ack()
            stats.record(delivery.queue, "completed", delivery.enqueued_at_ms)
            return True
        if isinstance(outcome, Retry):
            retry(handle, outcome.delay_ms)
            stats.record(delivery.queue, "retried")
            return False
        if isinstance(outcome, Cancelled):
            # Not reached while Cloudflare declares no `cancel_running` (no cancel signal is
            # passed to the engine); were it, the message ends, never retried nor dead-lettered.
            handle.ack()
            stats.record(delivery.queue, "cancelled")
            return True
        return await self._dead_letter(message, delivery, outcome)

    async def _dead_letter(
        self, message: PushMessage, delivery: Delivery, outcome: DeadLetter
    ) -> bool:
        stats = self.backend.stats
        # A dead-letter record is never dead-lettered again (the one rule, every backend).
        dlq = dead_letter_target(delivery.payload, self.dead_letter_queue)
        if dlq is None:
            logger.error(
                "%s job %s failed for good (%s) and %s; dropped",
                delivery.queue,
                delivery.job_id,
                outcome.reason,
                "the queue has no dead-letter queue"
                if self.dead_letter_queue is None
                else "it is a dead-letter record, which is never dead-lettered again",
            )
            message.handle.ack()
            stats.record(delivery.queue, "failed", delivery.enqueued_at_ms)
            return True
        sent = await send_record(
            self.backend, dlq, DeadLetterRecord.sent_as_message(delivery, outcome)
        )
        # Acked either way: the verdict stands, the processor does not run again.
        message.handle.ack()
        stats.record(delivery.queue, "dead_lettered" if sent else "failed", delivery.enqueued_at_ms)
        return True

    async def give_back(self, message: PushMessage) -> None:
        message.handle.retry()


def _field(message: Any, name: str) -> Any:
    """`message.<name>`; a getter that throws (a JsProxy) is an `InvalidRecord` of that field."""
    try:
        return getattr(message, name)
    except Exception as exc:
        raise InvalidRecord(name, exc, "cannot be read") from None


def _body(message: Any) -> tuple[Any, bool, ErrorInfo | None]:
    """(body, json_text, payload_error): text or bytes are JSON text (what pikkugen sends);
    any other value is what Cloudflare decoded for a foreign producer (contentType json or
    v8), taken when it is JSON data; else the text shown of it, and why."""
    try:
        raw = message.body
    except Exception as exc:  # a getter that throws
        return shown(exc), True, ErrorInfo(type=UNREADABLE_BODY, message=f"body: {exc}")
    try:
        data = js.to_py(raw)
        if isinstance(data, bytes | bytearray | memoryview):
            return bytes(data), True, None
        if isinstance(data, str):
            return data, True, None
        return js.plain_json(data), False, None
    except js.Unreadable as exc:
        return shown(raw), True, ErrorInfo(type=UNREADABLE_BODY, message=f"body: {exc}")


def push_message(message: Any) -> PushMessage:
    """A Cloudflare `Message` for the push core; total: a field it cannot read is the
    message's `record_error` (an `invalid_record` verdict naming the field), a body its
    `payload_error` (`invalid_payload`), never a raise."""
    record_error: ErrorInfo | None = None

    def read(name: str, reader: Callable[[Any], Any], default: Any) -> Any:
        nonlocal record_error
        try:
            return reader(_field(message, name))
        except InvalidRecord as exc:
            record_error = record_error or exc.error
            return default

    message_id = read("id", js.message_id, "unreadable-id")
    attempt = read("attempts", js.attempts_of, 1)
    enqueued_at_ms = read("timestamp", js.epoch_ms, 0)
    body, json_text, payload_error = _body(message)
    return PushMessage(
        message_id=message_id,
        body=body,
        attempt=attempt,
        enqueued_at_ms=enqueued_at_ms,
        json_text=json_text,
        handle=message,
        record_error=record_error,
        payload_error=payload_error,
    )


@dataclass
class CloudflareWorker:
    """One per isolate: engines, services and counters live as long as the isolate."""

    registry: Registry
    #: queue name → binding name (default: `binding_name(queue)`).
    bindings: Mapping[str, str] = field(default_factory=dict)
    #: queue → its dead-letter queue when the processor names none (the generator's
    #: `<name>-dlq`, declared in the wrangler config).
    dead_letters: Mapping[str, str] = field(default_factory=dict)
    #: cron expression → the queues it enqueues `{}` to.
    crons: Mapping[str, Sequence[str]] = field(default_factory=dict)
    #: `<queue>-stalled` (a consumer's Cloudflare `dead_letter_queue`) → `<queue>`.
    stalled: Mapping[str, str] = field(default_factory=dict)
    events: EventBus = field(default_factory=EventBus)
    stats: IsolateStats = field(default_factory=IsolateStats)
    engines: dict[str, Engine] | None = None
    clock: Callable[[], float] = time.time

    def backend(self, env: Any) -> CloudflareQueueAdapter:
        """The producer for this invocation, also made the default one, so the generated
        client and `queue_job` inside a processor send through the Worker's bindings."""
        backend = CloudflareQueueAdapter(env, self.bindings, self.stats)
        set_default_backend(backend)
        return backend

    async def _engines(self) -> dict[str, Engine]:
        if self.engines is None:
            # A broken deployment raises here: Cloudflare retries the batch; nothing is kept.
            services = await self.registry.acreate_services()
            self.engines = {
                # An isolate has one thread: sync processors run on its event loop.
                p.name: Engine(p, services=services, events=self.events, threads=False)
                for p in self.registry.load()
            }
        return self.engines

    def dead_letter_queue(self, engine: Engine | None, queue: str) -> str | None:
        declared = engine.processor.options.dead_letter_queue if engine is not None else None
        return declared or self.dead_letters.get(queue)

    async def queue(self, batch: Any, env: Any) -> None:
        budget = InvocationBudget.start(self.clock)
        backend = self.backend(env)
        engines = await self._engines()
        queue = str(batch.queue)
        messages = list(batch.messages)
        if queue in self.stalled:
            await self._stalled(self.stalled[queue], messages, backend, engines)
            return
        engine = engines.get(queue)
        if engine is None:
            logger.error("no processor for queue %r; %d messages retried", queue, len(messages))
            for message in messages:
                message.retry()
            return
        pushed = [push_message(message) for message in messages]
        sink = _Sink(backend, self.dead_letter_queue(engine, queue))
        result = await consume(engine, pushed, sink, remaining_ms=budget.remaining_ms)
        for verdict in result.verdicts:
            if verdict.state == "crashed":
                verdict.message.handle.retry()

    async def _stalled(
        self,
        origin: str,
        messages: Sequence[Any],
        backend: CloudflareQueueAdapter,
        engines: Mapping[str, Engine],
    ) -> None:
        """Messages Cloudflare gave up on (`<origin>-stalled`) as `stalled` records."""
        engine = engines.get(origin)
        deliveries = engine.processor.options.retry_options.attempts if engine is not None else 1
        dlq_of_origin = self.dead_letter_queue(engine, origin)
        error = ErrorInfo(
            type="StalledJobError",
            message=f"Cloudflare delivered this message {deliveries} times without an answer "
            "from the Worker (each invocation failed or ran out of time) and moved it to the "
            "consumer's dead_letter_queue",
        )
        for message in messages:
            delivery, _ = push_message(message).delivery(origin)
            delivery = Delivery(
                job_id=delivery.job_id,
                queue=origin,
                payload=delivery.payload,
                attempt=deliveries,
                enqueued_at_ms=delivery.enqueued_at_ms,
                payload_encoding=delivery.payload_encoding,
            )
            dlq = dead_letter_target(delivery.payload, dlq_of_origin)
            if dlq is None:
                logger.error("%s job %s stalled for good; dropped", origin, delivery.job_id)
                message.ack()
                backend.stats.record(origin, "failed", delivery.enqueued_at_ms)
                continue
            record = DeadLetterRecord.sent_as_message(delivery, DeadLetter("stalled", error))
            if await send_record(backend, dlq, record):
                message.ack()
                backend.stats.record(origin, "dead_lettered", delivery.enqueued_at_ms)
            else:  # no processor runs for this message: trying again later is safe
                message.retry(delaySeconds=STALLED_RETRY_SECONDS)

    async def scheduled(self, controller: Any, env: Any) -> None:
        """A cron trigger: enqueue `{}` to each queue whose processor repeats on that cron."""
        backend = self.backend(env)
        cron = str(getattr(controller, "cron", ""))
        queues = self.crons.get(cron, ())
        if not queues:
            logger.warning("cron trigger %r matches no processor's repeat", cron)
        for queue in queues:
            await backend.binding(queue).send("{}", contentType=CONTENT_TYPE)
