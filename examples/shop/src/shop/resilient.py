"""Error classification: retry what may pass next time, dead-letter what never will."""

from __future__ import annotations

from pikku_queue import JobContext, NonRetryableError, RetryOptions, queue_processor

from shop.models import Task, TaskResult

MAX_ATTEMPTS = 3


class FlakyUpstreamError(Exception):
    """A temporary failure: worth another try."""


@queue_processor(
    "resilient-tasks",
    retry_options=RetryOptions(attempts=MAX_ATTEMPTS, backoff="fixed", delay=200),
    dead_letter_queue="resilient-dlq",
)
async def resilient_processor(ctx: JobContext, data: Task) -> TaskResult:
    if data.task == "unknown":
        raise NonRetryableError(f"no handler for task {data.task!r}")
    if data.task == "flaky" and ctx.attempt < 2:
        raise FlakyUpstreamError(f"upstream busy on attempt {ctx.attempt}")
    ctx.logger.info("task %s done on attempt %d", data.task, ctx.attempt)
    return TaskResult(success=True, attempts=ctx.attempt)
