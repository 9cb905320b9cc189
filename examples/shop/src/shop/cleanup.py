"""A nightly cleanup: a processor-level cron `Repeat`, so workers (and, on AWS, an EventBridge
schedule in the SAM template) run it at 02:00 UTC with the payload `{}`."""

from __future__ import annotations

from typing import Any

from pikku_queue import JobContext, Repeat, queue_processor


@queue_processor("cleanup-task", repeat=Repeat(cron="0 2 * * *"))
def cleanup(ctx: JobContext, data: dict[str, Any]) -> int:
    ctx.logger.info("cleanup ran (job %s)", ctx.job_id)
    return 0
