"""The public names of pikku_queue are a contract: pin them, so removing or
renaming one is a deliberate change of this test, not an accident."""

import pikku_queue

PUBLIC = [
    "BatchOptions",
    "Dedupe",
    "EnqueueOptions",
    "JobContext",
    "JobFailedError",
    "JobHandle",
    "JobState",
    "JobTimeoutError",
    "NonRetryableError",
    "PayloadValidationError",
    "PikkuQueueError",
    "ProcessorOptions",
    "ProcessorSpec",
    "Progress",
    "QueueDefinition",
    "QueueMonitor",
    "QueueStats",
    "RateLimit",
    "Repeat",
    "RetryOptions",
    "TypedQueue",
    "UnknownQueueError",
    "add_queue_processor",
    "connect",
    "get_default_backend",
    "queue_job",
    "queue_job_sync",
    "queue_processor",
    "set_default_backend",
]


def test_all_is_pinned() -> None:
    assert sorted(pikku_queue.__all__) == PUBLIC


def test_every_public_name_resolves() -> None:
    for name in PUBLIC:
        assert getattr(pikku_queue, name) is not None, name
