"""A large dataset, processed with progress updates."""

from __future__ import annotations

import asyncio

from pikku_queue import JobContext
from pikku_queue import queue_processor as processor

from shop.models import DatasetJob, DatasetResult
from shop.services import Services


@processor("large-dataset", timeout=60_000)
async def process_large_dataset(ctx: JobContext, data: DatasetJob) -> DatasetResult:
    services: Services = ctx.services
    items = services.data.load(data.dataset_id, data.size)
    total = len(items)
    for processed, _item in enumerate(items, start=1):
        await asyncio.sleep(0.01)
        if processed % 10 == 0 or processed == total:
            await ctx.progress.update(processed=processed, total=total)
    return DatasetResult(processed=total, total=total)
