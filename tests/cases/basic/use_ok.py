"""Correct use of the generated client: mypy --strict must accept all of it."""

from basic_app.models import Email, Sent
from basic_gen.client import enqueue_cleanup_task_sync, enqueue_email_queue, queue_job
from pikku_queue import Repeat


async def send() -> Sent:
    handle = await enqueue_email_queue(Email(to="a@b.c", subject="hi", body="x"), delay=60000)
    await queue_job("cleanup-task", {"older_than": 7}, repeat=Repeat(cron="0 2 * * *"))
    await queue_job("cleanup-task", {"older_than": 7}, repeat={"cron": "0 2 * * *"})
    print(enqueue_cleanup_task_sync({}, repeat={"every": 60000, "limit": 3}).id)
    other = await queue_job("email-queue", Email(to="a", subject="b", body="c"), priority=1)
    sent: Sent = await other.result()
    print(sent.status)
    count: int = await (await queue_job("cleanup-task", {})).result()
    print(count, enqueue_cleanup_task_sync({}).id)
    return await handle.result()
