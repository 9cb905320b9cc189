from dataclasses import dataclass

from pikku_queue import BatchOptions, JobContext, queue_processor


@dataclass
class Item:
    id: str
    data: dict[str, int]


@dataclass
class ItemResult:
    id: str
    total: int | None = None


@queue_processor("batch-processor", batch=BatchOptions(size=10, timeout=500))
async def process_batch(ctx: JobContext, items: list[Item]) -> list[ItemResult]:
    return [ItemResult(id=i.id, total=sum(i.data.values())) for i in items]


@queue_processor("numbers", batch=BatchOptions(size=100))
def add_one(numbers: list[int]) -> list[int]:
    return [n + 1 for n in numbers]
