"""pikku_queue: the runtime that pikkugen's generated code imports.

Its core is pure Python + pydantic; backends that need a client library (redis, boto3) import
it only when chosen.
"""

from pikku_queue.adapters import connect
from pikku_queue.backend import JobState
from pikku_queue.client import (
    JobHandle,
    TypedQueue,
    get_default_backend,
    queue_job,
    queue_job_sync,
    set_default_backend,
)
from pikku_queue.context import JobContext, Progress
from pikku_queue.declarations import ProcessorSpec, add_queue_processor, queue_processor
from pikku_queue.errors import (
    JobFailedError,
    JobTimeoutError,
    NonRetryableError,
    PayloadValidationError,
    PikkuQueueError,
    UnknownQueueError,
)
from pikku_queue.monitor import QueueMonitor, QueueStats
from pikku_queue.options import (
    BatchOptions,
    EnqueueOptions,
    ProcessorOptions,
    QueueDefinition,
    Repeat,
    RetryOptions,
)

__all__ = [
    "BatchOptions",
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
