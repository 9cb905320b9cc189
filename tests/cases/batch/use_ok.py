from batch_app.work import Item, ItemResult
from batch_gen.client import enqueue_batch_processor, enqueue_numbers_sync


async def one() -> ItemResult:
    enqueue_numbers_sync(41)
    return await (await enqueue_batch_processor(Item(id="a", data={"x": 1}))).result()
