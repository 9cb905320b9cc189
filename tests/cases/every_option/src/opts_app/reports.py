from pikku_queue import BatchOptions, JobContext, RetryOptions, queue_processor


@queue_processor(
    "reports.daily",
    concurrency=2,
    max_concurrency=4,
    retry_options=RetryOptions(attempts=4, backoff="fixed", delay=500, max_delay=500),
    priority=2_097_151,
    delay=0,
    timeout=1,
    dead_letter_queue="reports_dlq",
    max_stalled_count=0,
    metrics=False,
    events=["progress", "completed", "completed"],
    batch=BatchOptions(size=25, timeout=0),
)
async def daily(ctx: JobContext, data: list[str]) -> list[None]:
    return [None for _ in data]
