from hostile_gen.client import (
    enqueue_2fa,
    enqueue_class,
    enqueue_email_queue,
    enqueue_email_queue_2,
    enqueue_email_queue_3,
    queue_job,
)


async def use() -> None:
    await enqueue_class(1)
    await enqueue_2fa(2)
    await enqueue_email_queue("x")
    await enqueue_email_queue_2("y")
    await enqueue_email_queue_3("z")
    flag: bool = await (await queue_job("queue_job", True)).result()
    await queue_job("None", None)
    await queue_job("...", 3)
    print(flag)
