"""A faithful Python double of Cloudflare Queues for a Worker's `queue(batch)` handler.

What it holds to, from Cloudflare's docs (batching-retries, dead-letter queues, JavaScript
APIs):

- `Message.ack()` / `Message.retry(delaySeconds=…)`: the first call on a message wins, later
  ones are ignored (`batch.ackAll()` / `batch.retryAll()` likewise, per message);
- when `queue()` returns, a message without a verdict is acked; when it throws, every message
  without a verdict is retried (after the consumer's `retry_delay`);
- `attempts` starts at 1 and grows by one on each redelivery; a message retried after its
  `max_retries + 1`-th attempt goes to the consumer's `dead_letter_queue` (or is dropped);
- a retried message comes back after its delay (`delaySeconds`, else `retry_delay`);
- producers: `send(body, contentType=…, delaySeconds=…)` and `sendBatch([{body, …}])`; a
  `text` body must be a string and a `bytes` body bytes (workerd's `queue.c++` refuses
  others), a `json` body keeps what JSON keeps.

Time is a counter the test moves (`now`, seconds), so delays are checked exactly.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

_ids = itertools.count(1)


@dataclass
class Stored:
    id: str
    body: Any
    timestamp_ms: int
    visible_at: float = 0.0
    attempts: int = 0
    #: Message fields a test replaces on delivery (what a foreign producer or a broken
    #: runtime could hand the consumer): `id`, `body`, `attempts`, `timestamp`.
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class Message:
    id: str
    body: Any
    timestamp: float  # epoch ms, as the Worker would read Date.getTime()
    attempts: int
    verdict: tuple[str, int | None] | None = None
    #: The id it is stored under (`id` itself may be overridden).
    stored_id: str = ""

    def ack(self) -> None:
        if self.verdict is None:
            self.verdict = ("ack", None)

    def retry(self, delaySeconds: int | None = None) -> None:
        assert delaySeconds is None or delaySeconds > 0, "delaySeconds is a positive number"
        if self.verdict is None:
            self.verdict = ("retry", delaySeconds)


@dataclass
class MessageBatch:
    queue: str
    messages: list[Message]

    def ackAll(self) -> None:
        for m in self.messages:
            m.ack()

    def retryAll(self, delaySeconds: int | None = None) -> None:
        for m in self.messages:
            m.retry(delaySeconds)


@dataclass
class Consumer:
    max_batch_size: int = 10
    max_retries: int = 3
    dead_letter_queue: str | None = None
    retry_delay: int = 0


@dataclass
class Queue:
    """A queue and its producer binding."""

    name: str
    platform: Cloudflare
    stored: dict[str, Stored] = field(default_factory=dict)
    #: (delaySeconds, body) of every send, in order
    sends: list[tuple[int, Any]] = field(default_factory=list)
    send_batch_sizes: list[int] = field(default_factory=list)

    #: How many of the next sends fail (a binding that is down).
    failing_sends: int = 0

    def _store(self, body: Any, content_type: str | None, delay: int | None) -> None:
        if self.failing_sends > 0:
            self.failing_sends -= 1
            raise RuntimeError(f"queue {self.name!r} is unavailable")
        assert delay is None or delay > 0, "delaySeconds is a positive number of seconds"
        if content_type == "json":
            body = json.loads(json.dumps(body))  # what structured JSON serialisation keeps
        elif content_type == "text":
            assert isinstance(body, str), "a text body is a string"
        elif content_type == "bytes":
            assert isinstance(body, bytes), "a bytes body is bytes"
        mid = f"msg-{next(_ids)}"
        now = self.platform.now
        self.stored[mid] = Stored(mid, body, int(now * 1000), visible_at=now + (delay or 0))
        self.sends.append((delay or 0, body))

    async def send(
        self,
        body: Any,
        contentType: str | None = None,
        delaySeconds: int | None = None,
    ) -> None:
        await asyncio.sleep(0)
        self._store(body, contentType, delaySeconds)

    async def sendBatch(self, messages: list[dict[str, Any]]) -> None:
        assert len(messages) <= 100, "sendBatch takes at most 100 messages"
        self.send_batch_sizes.append(len(messages))
        for m in messages:
            self._store(m["body"], m.get("contentType"), m.get("delaySeconds"))

    def bodies(self) -> list[Any]:
        return [s.body for s in self.stored.values()]

    def values(self) -> list[Any]:
        """The stored bodies as data: JSON text (what pikkugen sends) decoded."""
        return [value(s.body) for s in self.stored.values()]

    def sent(self) -> list[tuple[int, Any]]:
        return [(delay, value(body)) for delay, body in self.sends]


def value(body: Any) -> Any:
    return json.loads(body) if isinstance(body, str) else body


class Env:
    """`env`: one attribute per binding."""

    def __init__(self, bindings: dict[str, Queue]) -> None:
        for name, queue in bindings.items():
            setattr(self, name, queue)


@dataclass
class Cloudflare:
    now: float = 0.0
    queues: dict[str, Queue] = field(default_factory=dict)
    consumers: dict[str, Consumer] = field(default_factory=dict)
    #: every delivered message: (queue, body, attempts, verdict)
    log: list[tuple[str, Any, int, tuple[str, int | None] | None]] = field(default_factory=list)

    def queue(self, name: str) -> Queue:
        return self.queues.setdefault(name, Queue(name, self))

    def env(self, bindings: dict[str, str]) -> Env:
        return Env({binding: self.queue(queue) for queue, binding in bindings.items()})

    def batch(self, name: str) -> MessageBatch | None:
        """The next batch of visible messages of queue `name` (None: nothing visible)."""
        consumer = self.consumers.get(name, Consumer())
        queue = self.queue(name)
        ready = [s for s in queue.stored.values() if s.visible_at <= self.now]
        ready = ready[: consumer.max_batch_size]
        if not ready:
            return None
        messages = []
        for s in ready:
            s.attempts += 1
            s.visible_at = float("inf")  # in flight
            message = Message(s.id, s.body, s.timestamp_ms, s.attempts)
            for attribute, raw in s.overrides.items():
                setattr(message, attribute, raw)
            message.stored_id = s.id
            messages.append(message)
        return MessageBatch(name, messages)

    async def deliver(self, handler: Any, name: str, env: Env) -> MessageBatch | None:
        """Run `handler(batch, env)` on the next batch and apply the outcome as Cloudflare
        does; returns the batch (None: nothing was visible)."""
        batch = self.batch(name)
        if batch is None:
            return None
        consumer = self.consumers.get(name, Consumer())
        try:
            await handler(batch, env)
        except Exception:
            for m in batch.messages:
                m.retry()  # only those without a verdict: the first call wins
        else:
            for m in batch.messages:
                m.ack()
        queue = self.queue(name)
        for m in batch.messages:
            assert m.verdict is not None
            self.log.append((name, m.body, m.attempts, m.verdict))
            stored = queue.stored[m.stored_id or m.id]
            kind, delay = m.verdict
            if kind == "ack":
                del queue.stored[stored.id]
            elif stored.attempts > consumer.max_retries:
                del queue.stored[stored.id]
                if consumer.dead_letter_queue is not None:
                    dlq = self.queue(consumer.dead_letter_queue)
                    dlq.stored[stored.id] = Stored(
                        stored.id, stored.body, stored.timestamp_ms, self.now
                    )
            else:
                wait = consumer.retry_delay if delay is None else delay
                stored.visible_at = self.now + wait
        return batch

    def next_visible(self, name: str) -> float | None:
        times = [s.visible_at for s in self.queue(name).stored.values()]
        return min(times) if times else None
