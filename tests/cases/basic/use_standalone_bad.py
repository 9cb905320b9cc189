from basic_standalone.client import enqueue_email_queue, queue_job
from basic_standalone.models.q_email_queue import Email


async def send() -> None:
    await enqueue_email_queue({"to": "a"})  # mypy-error
    await queue_job("email-queue", 3)  # mypy-error
    handle = await enqueue_email_queue(Email(to="a", subject="b", body="c"))
    status: int = (await handle.result()).status  # mypy-error
    print(status)
