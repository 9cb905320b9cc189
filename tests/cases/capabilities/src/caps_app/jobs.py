from pikku_queue import BatchOptions, queue_processor


@queue_processor("urgent", priority=1)
async def urgent(data: int) -> int:
    return data


@queue_processor("later", delay=3_600_000)
async def later(data: int) -> int:
    return data


@queue_processor("Mixed_Case", dead_letter_queue="Mixed_Case.dlq")
async def mixed(data: int) -> int:
    return data


@queue_processor("global", max_concurrency=4, batch=BatchOptions(size=50))
async def global_limit(data: list[int]) -> list[int]:
    return data


@queue_processor("portable", concurrency=10, timeout=30_000, dead_letter_queue="portable-dlq")
async def portable(data: int) -> int:
    return data
