"""The Python double of Cloudflare Queues (cf_double) as a `Backend`, for the conformance
scenarios that need one: the producer is the real `CloudflareQueueAdapter` over the
double's bindings, and a burst "worker" is the real `CloudflareWorker` fed every batch the
double delivers, with the consumer settings the generator writes (`plan.consumer`: max
retries from the attempts, Cloudflare's own dead_letter_queue `<queue>-stalled`, which the
Worker consumes too), until nothing is left; time is the double's counter, moved to each
next visible message."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from cf_double import Cloudflare, Consumer, Env
from pikku_queue.adapters.cloudflare import CloudflareQueueAdapter, CloudflareWorker
from pikku_queue.adapters.cloudflare.limits import MAX_CONSUMER_BATCH, binding_name, stalled_queue
from pikku_queue.backend import WorkerOptions, WorkerReport
from pikku_queue.client import set_default_backend
from pikku_queue.engine import Engine
from pikku_queue.records import DeadLetterRecord, EnqueueRequest, FinishedJob, JobInfo, QueueCounts
from pikku_queue.registry import Registry

#: Deliveries one burst may take before it is called stuck.
MAX_DELIVERIES = 500


class DoubleEnv(Env):
    """`env` with a binding for any queue the test names (`QUEUE_<NAME>` → that queue)."""

    def __init__(self, platform: Cloudflare, bindings: dict[str, str]) -> None:
        super().__init__({})
        self._platform = platform
        self._bindings = bindings

    def __getattr__(self, name: str) -> Any:
        queue = self._bindings.get(name)
        if queue is None:
            raise AttributeError(name)
        return self._platform.queue(queue)


class DoubleBackend:
    url = "cloudflare://double"
    capabilities = CloudflareQueueAdapter.capabilities

    def __init__(self) -> None:
        self.platform = Cloudflare()
        self.by_binding: dict[str, str] = {}
        self.env = DoubleEnv(self.platform, self.by_binding)
        self.producer = CloudflareQueueAdapter(self.env)

    def _bind(self, *queues: str) -> None:
        for queue in queues:
            self.by_binding[binding_name(queue)] = queue

    async def enqueue(self, request: EnqueueRequest) -> str:
        """Sent through the real producer; the id is the message id the double gave it (what
        the consumer reads as the job id)."""
        self._bind(request.queue)
        await self.producer.enqueue(request)
        return list(self.platform.queue(request.queue).stored)[-1]

    async def enqueue_many(self, requests: Sequence[EnqueueRequest]) -> list[str]:
        return [await self.enqueue(r) for r in requests]

    async def run_worker(self, options: WorkerOptions) -> WorkerReport:
        processors = list(options.processors)
        worker = CloudflareWorker(
            Registry([]),
            stalled={stalled_queue(p.name): p.name for p in processors},
        )
        worker.engines = {
            p.name: Engine(p, services=options.services, events=options.events, threads=False)
            for p in processors
        }
        queues: list[str] = []
        for p in processors:
            dlq = p.options.dead_letter_queue
            self._bind(p.name, stalled_queue(p.name), *([dlq] if dlq else []))
            jobs = p.options.batch.size if p.options.batch else p.options.concurrency
            self.platform.consumers[p.name] = Consumer(
                max_batch_size=min(jobs, MAX_CONSUMER_BATCH),
                max_retries=p.options.retry_options.attempts - 1,
                dead_letter_queue=stalled_queue(p.name),
            )
            self.platform.consumers[stalled_queue(p.name)] = Consumer(max_retries=100)
            queues += [p.name, stalled_queue(p.name)]
        worker.bindings = {queue: binding for binding, queue in self.by_binding.items()}

        async def handler(batch: Any, env: Env) -> None:
            await worker.queue(batch, env)

        try:
            for _ in range(MAX_DELIVERIES):
                delivered = [await self.platform.deliver(handler, q, self.env) for q in queues]
                if any(b is not None for b in delivered):
                    continue
                due = [t for q in queues if (t := self.platform.next_visible(q)) is not None]
                if not due:
                    break
                self.platform.now = max(self.platform.now, min(due))
            else:
                raise AssertionError(f"the queues never drained in {MAX_DELIVERIES} deliveries")
        finally:
            set_default_backend(None)
        stats = worker.stats
        names = [p.name for p in processors]
        return WorkerReport(
            completed=sum(stats.count(q, "completed") for q in names),
            retried=sum(stats.count(q, "retried") for q in names),
            dead_lettered=sum(stats.count(q, "dead_lettered") for q in names),
            failed=sum(stats.count(q, "failed") for q in names),
        )

    async def dead_letters(self, dlq: str, limit: int = 100) -> list[DeadLetterRecord]:
        stored = list(self.platform.queue(dlq).stored.values())[:limit]
        return [DeadLetterRecord.from_payload(s.id, json.loads(s.body)) for s in stored]

    async def counts(self, queue: str) -> QueueCounts:
        stored = self.platform.queue(queue).stored.values()
        now = self.platform.now
        return QueueCounts(
            waiting=sum(1 for s in stored if s.visible_at <= now),
            active=sum(1 for s in stored if s.visible_at == float("inf")),
            delayed=sum(1 for s in stored if now < s.visible_at < float("inf")),
        )

    async def get_job(self, queue: str, job_id: str) -> JobInfo | None:
        return None

    async def finished_since(self, queue: str, since_ms: int) -> list[FinishedJob]:
        return []

    async def replay(self, dlq: str, ids: Sequence[str] | None = None) -> int:
        raise NotImplementedError

    async def close(self) -> None:
        return None
