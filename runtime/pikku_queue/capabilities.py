"""What each backend honours, as data.

One declaration feeds three readers: the generator (an option a configured runtime cannot
honour is a diagnostic at generate time), the README's support table (generated from it), and
the conformance suite (which skips a scenario a backend declares unsupported).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pikku_queue.options import MAX_JOB_ID_LENGTH, MAX_PRIORITY, MIN_PRIORITY

Feature = Literal[
    "priority",
    "delay",
    "cron",
    "job_id",
    "global_concurrency",
    "results",
    "progress",
    "timeout",
    "batch",
    "stalled_recovery",
    "events",
    "dead_letter",
    "metrics",
]

FEATURE_TITLES: dict[Feature, str] = {
    "priority": f"priority ({MIN_PRIORITY}..{MAX_PRIORITY:,})",
    "delay": "delay",
    "cron": "repeat (cron)",
    "job_id": f"job_id idempotency (≤ {MAX_JOB_ID_LENGTH} chars, no ':', not an integer)",
    "global_concurrency": "max_concurrency (global)",
    "results": "results (`JobHandle.result`)",
    "progress": "progress",
    "timeout": "timeout",
    "batch": "batch",
    "stalled_recovery": "stalled-job recovery",
    "events": "events",
    "dead_letter": "dead-letter queue",
    "metrics": "monitor stats",
}


@dataclass(frozen=True)
class Capabilities:
    backend: str
    title: str
    supported: frozenset[Feature]
    #: Longest delay the backend can hold, in ms (None: unlimited).
    max_delay_ms: int | None = None
    #: Largest payload in bytes (None: unlimited).
    max_payload_bytes: int | None = None
    #: Extra rule for queue names on this backend (a regex), with the reason.
    queue_name_pattern: str | None = None
    queue_name_rule: str | None = None
    #: Why a feature is missing or partial, shown in diagnostics and the support table.
    notes: dict[Feature, str] = field(default_factory=dict)
    #: False for a backend whose rules the generator knows but whose adapter is not built yet.
    implemented: bool = True
    #: False when "cron" holds only for a processor's own `repeat` (set up by the deployment,
    #: e.g. an EventBridge schedule) and a per-job `Repeat` at enqueue must be refused.
    job_repeat: bool = True

    def supports(self, feature: Feature) -> bool:
        return feature in self.supported


_ALL: frozenset[Feature] = frozenset(FEATURE_TITLES)

CAPABILITIES: dict[str, Capabilities] = {
    "memory": Capabilities(
        backend="memory",
        title="memory:// (tests)",
        supported=_ALL,
    ),
    "sqlite": Capabilities(
        backend="sqlite",
        title="sqlite:/// (embedded default)",
        supported=_ALL,
    ),
    "redis": Capabilities(
        backend="redis",
        title="redis:// (BullMQ)",
        supported=_ALL,
        notes={"priority": "BullMQ's order: jobs without a priority run before prioritised ones"},
    ),
    "sqs": Capabilities(
        backend="sqs",
        title="sqs:// + Lambda",
        supported=_ALL
        - {
            "priority",
            "global_concurrency",
            "results",
            "progress",
            "job_id",
            "stalled_recovery",
        },
        max_delay_ms=900_000,
        max_payload_bytes=1_048_576,
        queue_name_pattern=r"^(?:[A-Za-z0-9_-]{1,80}|[A-Za-z0-9_-]{1,75}\.fifo)$",
        queue_name_rule=(
            "SQS queue names hold only letters, digits, '-' and '_' (at most 80 characters), "
            "plus a final '.fifo' for FIFO queues"
        ),
        notes={
            "priority": "SQS has no message priority",
            "global_concurrency": (
                "Lambda only: the SAM template sets the event source mapping's "
                "MaximumConcurrency (at least 2); long-poll workers are not capped together"
            ),
            "results": "SQS stores no job results and cannot look a message up by id",
            "progress": "SQS stores no job progress",
            "delay": "at most 900 s, standard queues only; backoff in whole seconds",
            "job_id": "SQS deduplicates only on FIFO queues, for 5 minutes "
            "(MessageDeduplicationId); a job_id on a standard queue is refused",
            "cron": "processor-level `repeat` becomes an EventBridge Scheduler schedule in the "
            "SAM template; a per-job Repeat at enqueue is refused",
            "stalled_recovery": "a crashed consumer's message comes back after the visibility "
            "timeout and that receive counts as an attempt; RedrivePolicy maxReceiveCount, not "
            "max_stalled_count, bounds it",
            "dead_letter": "plus a RedrivePolicy for crashes",
            "metrics": "completed/failed counted per worker process or Lambda container",
            "timeout": "on Lambda also capped by the remaining invocation time",
            "events": "in the process that ran the job",
        },
        # SQS holds no schedules itself: only the SAM template's EventBridge schedules fire.
        job_repeat=False,
    ),
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
    "cloudflare": Capabilities(
        backend="cloudflare",
        title="Cloudflare Queues",
        supported=_ALL - {"priority", "results", "progress", "job_id"},
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
            "as an attempt; max_retries, not max_stalled_count, bounds it",
            "dead_letter": "the record is sent to the dead-letter queue's binding, then acked",
            "metrics": "completed/failed counted per Worker isolate",
            "events": "in the isolate that ran the job",
        },
        job_repeat=False,
    ),
}


def capabilities_for(backend: str) -> Capabilities:
    try:
        return CAPABILITIES[backend]
    except KeyError:
        known = ", ".join(sorted(CAPABILITIES))
        raise ValueError(f"unknown runtime {backend!r}; known: {known}") from None
