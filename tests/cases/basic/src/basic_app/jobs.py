from typing import Any

from pikku_queue import JobContext, RetryOptions, queue_processor

from basic_app.models import Email, Sent


@queue_processor(
    "email-queue",
    concurrency=5,
    retry_options=RetryOptions(attempts=3, backoff="exponential", delay=1000),
    dead_letter_queue="email-dlq",
)
async def process_email(ctx: JobContext, data: Email) -> Sent:
    return Sent(message_id="1", status="sent")


@queue_processor("cleanup-task")
def cleanup(ctx: JobContext, data: dict[str, Any]) -> int:
    return 0
