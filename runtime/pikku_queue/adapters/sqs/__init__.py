"""`sqs://`: Amazon SQS, with a long-poll worker and a Lambda handler (`backend`,
`long_poll`, `lambda_handler`). This module only declares the backend, so listing it never
imports boto3; its names are imported on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pikku_queue.capabilities import ALL_FEATURES, BackendEntry, Capabilities
from pikku_queue.lazy import lazy_exports

if TYPE_CHECKING:
    from pikku_queue.adapters.sqs.backend import SQSQueueAdapter, from_url

__all__ = ["BACKEND", "SQSQueueAdapter", "from_url"]

BACKEND = BackendEntry(
    capabilities=Capabilities(
        backend="sqs",
        title="sqs:// + Lambda",
        supported=ALL_FEATURES
        - {
            "priority",
            "global_concurrency",
            "results",
            "progress",
            "job_id",
            "stalled_recovery",
            "list_jobs",
            "retry_job",
            "remove_job",
            "promote_job",
            "pause_queue",
            "clean_jobs",
            "rate_limit",
            "rate_limit_group",
            "dedupe_replace",
            "dedupe_extend",
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
            "list_jobs": "SQS keeps no job records and cannot list its messages by state",
            "retry_job": "a job that failed for good is a message in its dead-letter queue: "
            "replay it",
            "remove_job": "SQS deletes a message only with the receipt handle of a receive",
            "promote_job": "SQS cannot change the delay of a message it holds",
            "pause_queue": "SQS has no pause: stop the workers or disable the Lambda's event "
            "source mapping",
            "clean_jobs": "SQS keeps no finished jobs",
            "replay_dead_letters": "a record is received to be listed, so the list is at most "
            "a few hundred and not paginated",
            "rate_limit": "SQS has no shared rate limit and long-poll workers share no state to "
            "hold one honestly (Lambda's MaximumConcurrency caps invocations, not a rate)",
            "rate_limit_group": "SQS has no shared rate limit",
            "dedupe": "FIFO queues only, for SQS's own 5 minutes whatever ttl_ms says "
            "(MessageDeduplicationId); a job's id is then derived from its key",
            "dedupe_replace": "SQS cannot change or remove a message it holds",
            "dedupe_extend": "SQS cannot change the delay of a message it holds",
        },
        # SQS holds no schedules itself: only the SAM template's EventBridge schedules fire.
        job_repeat=False,
        dedupe_window_ms=300_000,
    ),
    schemes=("sqs",),
    factory="pikku_queue.adapters.sqs.backend:from_url",
    extra="sqs",
    trace_system="aws_sqs",
)

__getattr__ = lazy_exports(__name__, {"SQSQueueAdapter": ".backend", "from_url": ".backend"})
