"""Image processing: the seed's call form with every option."""

from __future__ import annotations

import pikku_queue as pq

from shop.models import ImageJob, ImageResult

IMAGE_TIMEOUT_MS = 300_000  # 5 minutes


def process_image(ctx: pq.JobContext, data: ImageJob) -> ImageResult:
    """A sync processor: it runs in a worker thread."""
    ctx.progress.update(processed=1, total=1)
    return ImageResult(image_id=data.image_id, thumbnail=f"{data.image_id}-{data.width // 4}px")


pq.add_queue_processor(
    name="image-processing",
    func=process_image,
    concurrency=3,
    max_concurrency=10,
    retry_options={
        "attempts": 5,
        "backoff": "exponential",
        "delay": 2000,
        "max_delay": 60000,
        "factor": 2,
    },
    priority=10,
    delay=0,
    timeout=IMAGE_TIMEOUT_MS,
    dead_letter_queue="image-processing-dlq",
    max_stalled_count=3,
    metrics=True,
    events=["completed", "failed", "stalled"],
    batch=None,
)
