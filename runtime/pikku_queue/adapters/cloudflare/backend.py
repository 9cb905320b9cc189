"""The producer face on Cloudflare: jobs sent through the Worker's queue bindings.

Inside a Worker a queue is reached only through its binding (`env.QUEUE_ORDERS`), so the
backend is built per invocation from `env` and the queue → binding map the generator wrote.
The payload was validated by the typed client before it gets here; what is checked here is
what Cloudflare would refuse: a message over 128 KB, a delay over 12 hours. `enqueue_many`
uses `sendBatch`, at most 100 messages and 256 KB a call.

Cloudflare stores no job state a Worker can read back, so `counts()` and `finished_since()`
report what this isolate settled (its `IsolateStats`), not the queue's backlog, and there is
no job lookup, dead-letter listing or replay from inside a Worker.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pikku_queue.adapters.cloudflare import BACKEND, js
from pikku_queue.adapters.cloudflare.limits import (
    MAX_BATCH_BYTES,
    MAX_BATCH_MESSAGES,
    MAX_DELAY_SECONDS,
    MAX_MESSAGE_BYTES,
    METADATA_BYTES,
    binding_name,
    delay_seconds,
)
from pikku_queue.backend import WorkerOptions, WorkerReport
from pikku_queue.calls import split_calls
from pikku_queue.errors import BackendError, InvalidEnqueueOptionsError
from pikku_queue.payloads import dump_payload
from pikku_queue.records import DeadLetterRecord, EnqueueRequest, FinishedJob, JobInfo, QueueCounts

#: Finished jobs kept per queue for `finished_since` (throughput, latency).
FINISHED_HISTORY = 10_000


@dataclass
class IsolateStats:
    """What this isolate settled, per queue: Cloudflare keeps no history a Worker can read."""

    counters: dict[str, Counter[str]] = field(default_factory=dict)
    finished: dict[str, deque[FinishedJob]] = field(default_factory=dict)

    def record(self, queue: str, outcome: str, enqueued_at_ms: int = 0) -> None:
        self.counters.setdefault(queue, Counter())[outcome] += 1
        if outcome in ("completed", "dead_lettered", "failed"):
            history = self.finished.setdefault(queue, deque(maxlen=FINISHED_HISTORY))
            history.append(
                FinishedJob(
                    enqueued_at_ms=enqueued_at_ms,
                    finished_at_ms=int(time.time() * 1000),
                    succeeded=outcome == "completed",
                )
            )

    def count(self, queue: str, outcome: str) -> int:
        return self.counters.get(queue, Counter())[outcome]


def encode(payload: Any, queue: str) -> str:
    """The message as Cloudflare will size it (JSON, ASCII escapes: the size errs high),
    refused when over 128 KB; the writers' rule refuses NaN or a lone surrogate first."""
    text = dump_payload(queue, payload, ascii=True)
    size = len(text.encode()) + METADATA_BYTES
    if size > MAX_MESSAGE_BYTES:
        raise BackendError(
            f"job for queue {queue!r} is {size} bytes as a Cloudflare Queues message "
            f"(with ~{METADATA_BYTES} bytes of metadata); Cloudflare takes at most "
            f"{MAX_MESSAGE_BYTES} bytes (128 KB): store the data elsewhere (R2) and send a key"
        )
    return text


def send_seconds(delay_ms: int) -> int:
    seconds = delay_seconds(delay_ms)
    if seconds > MAX_DELAY_SECONDS:
        raise InvalidEnqueueOptionsError(
            f"Cloudflare Queues delay a message at most {MAX_DELAY_SECONDS} s (delaySeconds); "
            f"a delay of {delay_ms} ms cannot be sent"
        )
    return seconds


class CloudflareQueueAdapter:
    """`Backend` over a Worker's queue bindings."""

    capabilities = BACKEND.capabilities

    def __init__(
        self,
        env: Any,
        bindings: Mapping[str, str] | None = None,
        stats: IsolateStats | None = None,
    ) -> None:
        self.env = env
        #: queue name → binding name (default: `binding_name(queue)`).
        self.bindings = dict(bindings or {})
        self.stats = stats or IsolateStats()
        self.url = "cloudflare://"

    def binding(self, queue: str) -> Any:
        name = self.bindings.get(queue) or binding_name(queue)
        target = getattr(self.env, name, None)
        if target is None:
            raise BackendError(
                f"this Worker has no queue binding {name!r} for queue {queue!r}: add it to "
                "the wrangler config's queues.producers (pikkugen writes one per queue)"
            )
        return target

    @staticmethod
    def _check(request: EnqueueRequest) -> None:
        if request.job_id is not None or request.priority is not None or request.repeat:
            raise BackendError(
                "Cloudflare Queues take no job ids, priorities or per-job schedules "
                "(a processor's repeat becomes a cron trigger in the wrangler config)"
            )

    async def enqueue(self, request: EnqueueRequest) -> str:
        self._check(request)
        body = json.loads(encode(request.payload, request.queue))
        options: dict[str, Any] = {"contentType": "json"}
        seconds = send_seconds(request.delay_ms)
        if seconds:
            options["delaySeconds"] = seconds
        await self.binding(request.queue).send(js.to_js(body), **options)
        # A send returns no message id a Worker can look up later; the id is ours, for logs.
        return f"cf-{uuid.uuid4().hex}"

    async def enqueue_many(self, requests: Sequence[EnqueueRequest]) -> list[str]:
        """`sendBatch` per queue, in calls of at most 100 messages and 256 KB."""
        for request in requests:
            self._check(request)
        entries: dict[str, list[tuple[dict[str, Any], int]]] = {}
        for request in requests:  # every message is checked before anything is sent
            text = encode(request.payload, request.queue)
            entry: dict[str, Any] = {"body": json.loads(text), "contentType": "json"}
            seconds = send_seconds(request.delay_ms)
            if seconds:
                entry["delaySeconds"] = seconds
            entries.setdefault(request.queue, []).append((entry, len(text.encode())))
        for queue, items in entries.items():
            binding = self.binding(queue)
            for chunk in _chunks(items):
                await binding.sendBatch(js.to_js(chunk))
        return [f"cf-{uuid.uuid4().hex}" for _ in requests]

    async def get_job(self, queue: str, job_id: str) -> JobInfo | None:
        return None  # Cloudflare cannot look a message up

    async def counts(self, queue: str) -> QueueCounts:
        return QueueCounts(
            completed=self.stats.count(queue, "completed"),
            failed=self.stats.count(queue, "failed"),
            dead_lettered=self.stats.count(queue, "dead_lettered"),
        )

    async def finished_since(self, queue: str, since_ms: int) -> list[FinishedJob]:
        return [f for f in self.stats.finished.get(queue, ()) if f.finished_at_ms >= since_ms]

    async def dead_letters(self, dlq: str, limit: int = 100) -> list[DeadLetterRecord]:
        raise BackendError(
            "a Worker cannot list a Cloudflare queue; consume the dead-letter queue with a "
            "processor, or read it with `wrangler queues` / the dashboard"
        )

    async def replay(self, dlq: str, ids: Sequence[str] | None = None) -> int:
        raise BackendError("replaying a Cloudflare dead-letter queue needs a consumer of it")

    async def run_worker(self, options: WorkerOptions) -> WorkerReport:
        raise BackendError(
            "Cloudflare pushes batches to the Worker's queue handler (cloudflare_worker.py); "
            "there is no worker loop to run"
        )

    async def close(self) -> None:
        return None


def _chunks(
    items: Sequence[tuple[dict[str, Any], int]],
) -> list[list[dict[str, Any]]]:
    """`sendBatch` calls of at most 100 messages and 256 KB (each message counts its metadata)."""
    sizes = [body_bytes + METADATA_BYTES for _, body_bytes in items]
    calls = split_calls(sizes, max_items=MAX_BATCH_MESSAGES, max_bytes=MAX_BATCH_BYTES)
    return [[items[index][0] for index in call] for call in calls]
