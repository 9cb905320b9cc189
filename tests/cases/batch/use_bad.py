from batch_app.work import Item
from batch_gen.client import enqueue_batch_processor, enqueue_numbers_sync


async def many() -> None:
    await enqueue_batch_processor([Item(id="a", data={})])  # mypy-error
    enqueue_numbers_sync([1, 2])  # mypy-error
