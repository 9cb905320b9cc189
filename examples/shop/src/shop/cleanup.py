"""A nightly cleanup, enqueued with a cron `Repeat`."""

from __future__ import annotations

from typing import Any

from pikku_queue import JobContext, queue_processor


@queue_processor("cleanup-task")
def cleanup(ctx: JobContext, data: dict[str, Any]) -> int:
    ctx.logger.info("cleanup ran (job %s)", ctx.job_id)
    return 0
