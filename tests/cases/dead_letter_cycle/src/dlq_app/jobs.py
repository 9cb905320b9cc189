"""Dead-letter queues between processors: a cycle (an error) and a DLQ another processor
serves (a warning)."""

from pikku_queue import queue_processor


@queue_processor("cyc-a", dead_letter_queue="cyc-b")
async def first(data: int) -> None:
    return None


@queue_processor("cyc-b", dead_letter_queue="cyc-a")
async def second(data: int) -> None:
    return None


@queue_processor("orders", dead_letter_queue="fallback")
async def orders(data: int) -> None:
    return None


@queue_processor("fallback", dead_letter_queue="fallback-dlq")
async def fallback(data: int) -> None:
    return None
