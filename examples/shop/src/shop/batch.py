"""A batch processor: up to 10 items per call; a failed item is retried alone."""

from __future__ import annotations

from pikku_queue import BatchOptions, JobContext, RetryOptions, queue_processor

from shop.models import Item, ItemResult


@queue_processor(
    "batch-processor",
    batch=BatchOptions(size=10, timeout=500),
    retry_options=RetryOptions(attempts=2, delay=100),
    dead_letter_queue="batch-dlq",
)
async def process_batch(ctx: JobContext, items: list[Item]) -> list[ItemResult]:
    results: list[ItemResult] = []
    for index, item in enumerate(items):
        if "poison" in item.data:
            ctx.fail_item(index, f"item {item.id} holds poison")
            results.append(ItemResult(id=item.id, status="failed"))
            continue
        results.append(ItemResult(id=item.id, status="success", total=sum(item.data.values())))
    return results
