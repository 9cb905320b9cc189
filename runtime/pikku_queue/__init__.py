"""pikku_queue: the runtime that pikkugen's generated code imports.

Its core is pure Python + pydantic; backends that need a client library (redis, boto3) import
it only when chosen.
"""

from typing import TYPE_CHECKING

from pikku_queue.lazy import lazy_exports

if TYPE_CHECKING:
    from pikku_queue.adapters import connect
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
        Dedupe,
        EnqueueOptions,
        ProcessorOptions,
        QueueDefinition,
        RateLimit,
        Repeat,
        RetryOptions,
    )
    from pikku_queue.records import JobState

__all__ = [
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

#: Where each public name lives. They are imported on first use (PEP 562), so importing one
#: runtime module (the generator reads `pikku_queue.options` at scan time) does not load the
#: client, the monitor, the adapters and asyncio with it.
_HOMES = {
    "connect": "pikku_queue.adapters",
    "JobState": "pikku_queue.records",
    "JobHandle": "pikku_queue.client",
    "TypedQueue": "pikku_queue.client",
    "get_default_backend": "pikku_queue.client",
    "queue_job": "pikku_queue.client",
    "queue_job_sync": "pikku_queue.client",
    "set_default_backend": "pikku_queue.client",
    "JobContext": "pikku_queue.context",
    "Progress": "pikku_queue.context",
    "ProcessorSpec": "pikku_queue.declarations",
    "add_queue_processor": "pikku_queue.declarations",
    "queue_processor": "pikku_queue.declarations",
    "JobFailedError": "pikku_queue.errors",
    "JobTimeoutError": "pikku_queue.errors",
    "NonRetryableError": "pikku_queue.errors",
    "PayloadValidationError": "pikku_queue.errors",
    "PikkuQueueError": "pikku_queue.errors",
    "UnknownQueueError": "pikku_queue.errors",
    "QueueMonitor": "pikku_queue.monitor",
    "QueueStats": "pikku_queue.monitor",
    "BatchOptions": "pikku_queue.options",
    "Dedupe": "pikku_queue.options",
    "RateLimit": "pikku_queue.options",
    "EnqueueOptions": "pikku_queue.options",
    "ProcessorOptions": "pikku_queue.options",
    "QueueDefinition": "pikku_queue.options",
    "Repeat": "pikku_queue.options",
    "RetryOptions": "pikku_queue.options",
}


__getattr__ = lazy_exports(__name__, _HOMES)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
