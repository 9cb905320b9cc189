from hostile_gen.client import enqueue_class, queue_job


async def use() -> None:
    await enqueue_class("one")  # mypy-error
    await queue_job("class ", 1)  # mypy-error
