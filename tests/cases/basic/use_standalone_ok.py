"""A service that only enqueues: the standalone client built from `schemas/` alone."""

from basic_standalone.client import enqueue_email_queue, queue_job
from basic_standalone.models.q_email_queue import Email, Sent


async def send() -> Sent:
    await queue_job("cleanup-task", {"older_than": 7})
    handle = await enqueue_email_queue(Email(to="a@b.c", subject="hi", body="x"))
    sent = await handle.result()
    print(sent.status == "sent")
    return sent
