"""Cloudflare Queues: a Python Worker's producer (bindings) and consumer (`queue(batch)`).

Pure Python plus pydantic, so it runs on Pyodide. `backend` is the producer face, `consumer`
the consumer face, `limits` Cloudflare's numbers and the binding-name rule. This module only
declares the backend; its names are imported on first use (the generator reads only `limits`
at generate time and should not load the consumer, the engine and asyncio with it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pikku_queue.capabilities import (
    ALL_FEATURES,
    MONITOR_FEATURES,
    BackendEntry,
    Capabilities,
    Feature,
)
from pikku_queue.lazy import lazy_exports

if TYPE_CHECKING:
    from pikku_queue.adapters.cloudflare.backend import CloudflareQueueAdapter, IsolateStats
    from pikku_queue.adapters.cloudflare.consumer import CloudflareWorker
    from pikku_queue.adapters.cloudflare.limits import binding_name

__all__ = ["BACKEND", "CloudflareQueueAdapter", "CloudflareWorker", "IsolateStats", "binding_name"]

# Cloudflare's numbers, checked against its docs:
#   https://developers.cloudflare.com/queues/platform/limits/ — message 128 KB (1 KB =
#     1000 bytes, ~100 bytes of metadata count), sendBatch 100 messages / 256 KB, consumer
#     batch 100, batch wait 60 s, 100 retries, delaySeconds "when sending or retrying" 12 h
#     (43,200 s; 24 h was wrong: only local miniflare accepts up to 86,400 s), consumer wall
#     clock 15 min, CPU 30 s by default (limits.cpu_ms up to 5 min)
#   https://developers.cloudflare.com/queues/configuration/configure-queues/ — consumer
#     settings (max_batch_size, max_batch_timeout, max_retries, dead_letter_queue,
#     max_concurrency, retry_delay)
#   https://developers.cloudflare.com/queues/configuration/batching-retries/ — per-message
#     ack()/retry({delaySeconds}); the first call on a message wins
# No page states the queue-name rule; the pattern is the conservative one `wrangler queues
# create` accepts (lowercase letters, digits, '-').
#: Rate limits and deduplication: Cloudflare Queues offer neither.
_LIMITS: frozenset[Feature] = frozenset(
    {"rate_limit", "rate_limit_group", "dedupe", "dedupe_replace", "dedupe_extend"}
)

BACKEND = BackendEntry(
    capabilities=Capabilities(
        backend="cloudflare",
        title="Cloudflare Queues",
        supported=ALL_FEATURES
        - {"priority", "results", "progress", "job_id"}
        - MONITOR_FEATURES
        - _LIMITS,
        max_delay_ms=43_200_000,
        max_payload_bytes=128_000,
        queue_name_pattern=r"^[a-z0-9-]{1,63}$",
        queue_name_rule=(
            "Cloudflare queue names hold only lowercase letters, digits and '-' "
            "(at most 63 characters)"
        ),
        notes={
            "priority": "Cloudflare Queues have no priority",
            "results": "Cloudflare Queues store no job results and cannot look a message up",
            "progress": "Cloudflare Queues store no job progress",
            "job_id": "Cloudflare Queues have no deduplication by id",
            "global_concurrency": "the consumer's max_concurrency (invocations) in the wrangler "
            "config, max_concurrency divided by the jobs one invocation runs at once",
            "delay": "at most 12 h (delaySeconds); backoff in whole seconds",
            "cron": "processor-level `repeat` becomes a cron trigger (whole minutes); a per-job "
            "Repeat at enqueue is refused",
            "timeout": "also capped by the invocation's 15-minute wall clock",
            "stalled_recovery": "a batch whose invocation dies is redelivered and that counts "
            "as an attempt; max_retries, not max_stalled_count, bounds it, then Cloudflare moves "
            "it to <queue>-stalled and the Worker records it as stalled",
            "dead_letter": "the record is sent to the dead-letter queue's binding, then acked; "
            "Cloudflare's own dead_letter_queue is <queue>-stalled, never the records' queue",
            "metrics": "completed/failed counted per Worker isolate",
            "events": "in the isolate that ran the job",
            "rate_limit": "Cloudflare Queues have no shared rate limit: each invocation runs "
            "on its own (max_concurrency in the wrangler config caps invocations, not starts "
            "per window)",
            "rate_limit_group": "Cloudflare Queues have no shared rate limit",
            **dict.fromkeys(
                ("dedupe", "dedupe_replace", "dedupe_extend"),
                "Cloudflare Queues have no deduplication and a Worker cannot look a message up",
            ),
            **dict.fromkeys(
                MONITOR_FEATURES,
                "no monitor: a Worker cannot list, change or pause a Cloudflare queue (use the "
                "dashboard or `wrangler queues`; a dead-letter queue is drained by a consumer)",
            ),
        },
        job_repeat=False,
    ),
    schemes=("cloudflare",),
    factory=None,
    extra=None,
    trace_system="cloudflare_queues",
    opened_by="a Worker's queue bindings: CloudflareQueueAdapter(env) inside the Worker",
)

__getattr__ = lazy_exports(
    __name__,
    {
        "CloudflareQueueAdapter": ".backend",
        "IsolateStats": ".backend",
        "binding_name": ".limits",
        "CloudflareWorker": ".consumer",
    },
)
