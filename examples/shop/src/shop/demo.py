"""Enqueue the seed's jobs through the generated, typed client (the README's main job).

From examples/shop: `pikkugen scan`, then `PYTHONPATH=src python -m shop.demo`, then
`pikkugen worker --burst` (what scripts/demo does).
"""

from __future__ import annotations

import asyncio

from pikku_queue import PayloadValidationError

from shop.generated.client import (
    enqueue_batch_processor,
    enqueue_cleanup_task,
    enqueue_email_queue,
    enqueue_image_processing,
    enqueue_large_dataset,
    enqueue_resilient_tasks,
)
from shop.models import DatasetJob, Email, ImageJob, Item, Task


async def main() -> None:
    welcome = Email(to="ada@example.com", subject="Welcome to our platform!", body="Hello Ada")
    await enqueue_email_queue(welcome)
    # Bounces three times (exponential backoff 1 s, 2 s), then lands in email-dlq.
    bounce = Email(to="nobody@bounce.invalid", subject="Welcome", body="Hello?")
    await enqueue_email_queue(bounce, job_id="welcome-nobody")
    # A reminder held back for 2 seconds, before the others by priority once due.
    reminder = Email(to="ada@example.com", subject="Reminder", body="Still there?")
    await enqueue_email_queue(reminder, delay=2000, priority=1)
    # Progress: 200 items, reported every 10.
    await enqueue_large_dataset(DatasetJob(dataset_id="orders-2026", size=200))
    # A batch: 25 items gathered into calls of up to 10; one is poisoned and dead-letters alone.
    for number in range(25):
        data = {"poison": 1} if number == 13 else {"price": number, "qty": 2}
        await enqueue_batch_processor(Item(id=f"item-{number}", data=data))
    await enqueue_image_processing(ImageJob(image_id="cat-1", width=1024, height=768))
    # Error classification: a flaky task succeeds on its second attempt, an unknown one
    # dead-letters at once (NonRetryableError).
    await enqueue_resilient_tasks(Task(task="flaky"))
    await enqueue_resilient_tasks(Task(task="unknown"))
    # The nightly cron run (02:00 UTC) needs no enqueue: `repeat=` on the declaration in
    # shop/cleanup.py, which the worker registers at start. This is one extra run, now.
    await enqueue_cleanup_task({})
    # A payload that does not match the input type is refused before anything is sent.
    try:
        await enqueue_image_processing(ImageJob.model_construct(image_id="x", width=-1, height=0))
    except PayloadValidationError as error:
        print(f"refused at enqueue: {error.detail.splitlines()[0]} ({', '.join(error.fields)})")
    print("enqueued the seed's jobs")


if __name__ == "__main__":
    asyncio.run(main())
