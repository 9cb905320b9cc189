import pikku_queue as pq
from pydantic import BaseModel

from opts_app.limits import DLQ, IMAGE_TIMEOUT_MS


class ImageJob(BaseModel):
    image_id: str
    width: int


class ImageResult(BaseModel):
    thumbnail: str


def process_image(ctx: pq.JobContext, data: ImageJob) -> ImageResult:
    return ImageResult(thumbnail=data.image_id)


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
        "jitter": 0.5,
    },
    priority=10,
    delay=250,
    timeout=IMAGE_TIMEOUT_MS,
    dead_letter_queue=DLQ,
    max_stalled_count=3,
    metrics=True,
    events=["completed", "failed", "stalled"],
    batch=None,
    rate_limit=pq.RateLimit(max=50, per_ms=1000),
    dedupe={"key": "image-{image_id}-{width}", "ttl_ms": 60_000, "mode": "extend"},
)
