"""The consumer face on Cloudflare: a Worker's `queue(batch)` through the push core.

The generated `cloudflare_worker.py` holds one `CloudflareWorker` for the isolate and calls
`queue(batch, env)` and `scheduled(controller, env)` from its `Default(WorkerEntrypoint)`.

Each batch is dispatched by `batch.queue` to that queue's engine through `pikku_queue.push`,
and every message gets exactly one explicit verdict, so one failing job never redelivers the
others (Cloudflare's first ack/retry on a message wins):

    Completed   → message.ack()
    Retry       → message.retry(delaySeconds=ceil(delay_ms / 1000)) (at most 12 h)
    DeadLetter  → the DeadLetterRecord is sent to the processor's dead_letter_queue binding,
                  then message.ack(); with no dead-letter queue, or for a job that is itself
                  a dead-letter record (`backend.dead_letter_target`: never dead-lettered
                  again), the job is dropped (logged, counted failed). If that send fails the
                  message is retried instead, and Cloudflare's own dead_letter_queue setting
                  catches it after max_retries.

The attempt is `message.attempts` (1-based). A message of a queue this Worker has no
processor for, or one that crashed the consumer, is retried. A broken deployment (a failing
services factory) raises, so Cloudflare retries the whole batch. The attempt timeout is the
processor's `timeout` or what is left of the invocation's 15-minute wall clock, whichever is
less.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from pikku_queue.adapters.cloudflare import js
from pikku_queue.adapters.cloudflare.backend import CloudflareQueueAdapter, IsolateStats
from pikku_queue.adapters.cloudflare.limits import (
    CONSUMER_WALL_CLOCK_MS,
    MAX_DELAY_SECONDS,
    delay_seconds,
)
from pikku_queue.client import set_default_backend
from pikku_queue.engine import Engine
from pikku_queue.events import EventBus
from pikku_queue.outcomes import Completed, DeadLetter, Delivery, Outcome, Retry
from pikku_queue.push import PushMessage, consume
from pikku_queue.records import DeadLetterRecord, dead_letter_target
from pikku_queue.registry import Registry

logger = logging.getLogger("pikku_queue.cloudflare")

#: Time kept back from the wall clock to answer every message before the deadline.
SETTLE_MARGIN_MS = 1_000


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
            handle.retry(delaySeconds=retry_seconds(outcome.delay_ms))
            stats.record(delivery.queue, "retried")
            return False
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
        record = DeadLetterRecord.sent_as_message(delivery, outcome)
        try:
            binding = self.backend.binding(dlq)
            await binding.send(js.to_js(record.as_payload()), contentType="json")
        except Exception:
            logger.exception(
                "%s job %s: sending to the dead-letter queue failed; retried",
                delivery.queue,
                delivery.job_id,
            )
            message.handle.retry()
            return False
        message.handle.ack()
        stats.record(delivery.queue, "dead_lettered", delivery.enqueued_at_ms)
        return True

    async def give_back(self, message: PushMessage) -> None:
        message.handle.retry()


def retry_seconds(delay_ms: int) -> int:
    seconds = delay_seconds(delay_ms)
    if seconds > MAX_DELAY_SECONDS:
        logger.warning(
            "retry backoff of %d ms exceeds Cloudflare's longest delay; using %d s",
            delay_ms,
            MAX_DELAY_SECONDS,
        )
    return min(seconds, MAX_DELAY_SECONDS)


def push_message(message: Any) -> PushMessage:
    """A Cloudflare `Message` for the push core. A body sent as bytes must hold JSON text; any
    other body is Cloudflare's already decoded value (contentType json, text or v8)."""
    body = js.to_py(message.body)
    raw = isinstance(body, bytes | bytearray | memoryview)
    return PushMessage(
        message_id=str(message.id),
        body=bytes(body) if raw else body,
        attempt=int(message.attempts),
        enqueued_at_ms=js.epoch_ms(message.timestamp),
        json_text=raw,
        handle=message,
    )


class CloudflareWorker:
    """One per isolate: engines, services and counters live as long as the isolate."""

    def __init__(
        self,
        registry: Registry,
        *,
        bindings: Mapping[str, str] | None = None,
        dead_letters: Mapping[str, str] | None = None,
        crons: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.registry = registry
        self.bindings = dict(bindings or {})
        #: queue → its dead-letter queue when the processor names none (the generator's
        #: `<name>-dlq`, declared in the wrangler config).
        self.dead_letters = dict(dead_letters or {})
        #: cron expression → the queues it enqueues `{}` to.
        self.crons = {cron: tuple(queues) for cron, queues in (crons or {}).items()}
        self.events = EventBus()
        self.stats = IsolateStats()
        self.engines: dict[str, Engine] | None = None

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

    async def queue(self, batch: Any, env: Any) -> None:
        started = time.monotonic()
        backend = self.backend(env)
        engines = await self._engines()
        queue = str(batch.queue)
        messages = list(batch.messages)
        engine = engines.get(queue)
        if engine is None:
            logger.error("no processor for queue %r; %d messages retried", queue, len(messages))
            for message in messages:
                message.retry()
            return
        pushed = []
        for message in messages:
            try:
                pushed.append(push_message(message))
            except Exception:
                logger.exception("%s: unreadable message; retried", queue)
                message.retry()

        def remaining_ms() -> int:
            elapsed = int((time.monotonic() - started) * 1000)
            return max(1, CONSUMER_WALL_CLOCK_MS - elapsed - SETTLE_MARGIN_MS)

        dead_letter_queue = engine.processor.options.dead_letter_queue
        sink = _Sink(backend, dead_letter_queue or self.dead_letters.get(queue))
        result = await consume(engine, pushed, sink, remaining_ms=remaining_ms)
        for verdict in result.verdicts:
            if verdict.state == "crashed":
                verdict.message.handle.retry()

    async def scheduled(self, controller: Any, env: Any) -> None:
        """A cron trigger: enqueue `{}` to each queue whose processor repeats on that cron."""
        backend = self.backend(env)
        cron = str(getattr(controller, "cron", ""))
        queues = self.crons.get(cron, ())
        if not queues:
            logger.warning("cron trigger %r matches no processor's repeat", cron)
        for queue in queues:
            await backend.binding(queue).send(js.to_js({}), contentType="json")
