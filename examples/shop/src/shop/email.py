"""Email sending: the decorator form, exponential retries and a dead-letter queue."""

from __future__ import annotations

from pikku_queue import JobContext, RetryOptions, queue_processor

from shop.models import Email, Sent
from shop.services import Services


@queue_processor(
    "email-queue",
    concurrency=5,
    retry_options=RetryOptions(attempts=3, backoff="exponential", delay=1000),
    dead_letter_queue="email-dlq",
)
async def process_email(ctx: JobContext, data: Email) -> Sent:
    services: Services = ctx.services
    message_id = await services.email.send(data.to, data.subject, data.body)
    ctx.logger.info("email sent: %s", message_id)
    return Sent(message_id=message_id, status="sent")
