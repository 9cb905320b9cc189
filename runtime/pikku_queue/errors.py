"""Exceptions a user sees, each named for what went wrong rather than where."""

from __future__ import annotations


class PikkuQueueError(Exception):
    """Base of every error the runtime raises on purpose."""


class NonRetryableError(PikkuQueueError):
    """Raise from a processor to send the job to the dead-letter queue at once, without retries."""


class JobTimeoutError(PikkuQueueError):
    """An attempt ran longer than the processor's `timeout`."""


class PayloadValidationError(PikkuQueueError):
    """A payload does not match the queue's input type; raised at enqueue, nothing was sent."""

    def __init__(self, queue: str, detail: str) -> None:
        super().__init__(f"invalid payload for queue {queue!r}: {detail}")
        self.queue = queue
        self.detail = detail


class UnknownQueueError(PikkuQueueError):
    """A queue name that no registered processor serves."""


class BackendError(PikkuQueueError):
    """A backend URL, connection or limit problem (message too large, delay out of range…)."""


class JobFailedError(PikkuQueueError):
    """`JobHandle.result()` on a job that failed for good (dead-lettered)."""
