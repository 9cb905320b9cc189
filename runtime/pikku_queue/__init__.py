"""pikku_queue: the runtime that pikkugen's generated code imports.

Its core is pure Python + pydantic; backends that need a client library (redis, boto3) import
it only when chosen.
"""

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
from pikku_queue.options import (
    BatchOptions,
    JobOptions,
    ProcessorOptions,
    QueueDefinition,
    Repeat,
    RetryOptions,
)

__all__ = [
    "BatchOptions",
    "JobContext",
    "JobFailedError",
    "JobOptions",
    "JobTimeoutError",
    "NonRetryableError",
    "PayloadValidationError",
    "PikkuQueueError",
    "ProcessorOptions",
    "ProcessorSpec",
    "Progress",
    "QueueDefinition",
    "Repeat",
    "RetryOptions",
    "UnknownQueueError",
    "add_queue_processor",
    "queue_processor",
]
