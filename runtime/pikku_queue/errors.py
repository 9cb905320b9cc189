"""Exceptions a user sees, each named for what went wrong rather than where."""

from __future__ import annotations

import re

#: pydantic's "For further information visit https://errors.pydantic.dev/…" line, which ends
#: every error of a ValidationError's text and says nothing about the payload.
_PYDANTIC_URL_LINE = re.compile(
    r"\n?[ \t]*For further information visit https://errors\.pydantic\.dev/\S*"
)


def without_error_urls(text: str) -> str:
    """A message with pydantic's "For further information visit …" lines removed."""
    return _PYDANTIC_URL_LINE.sub("", text)


class PikkuQueueError(Exception):
    """Base of every error the runtime raises on purpose."""


class NonRetryableError(PikkuQueueError):
    """Raise from a processor to send the job to the dead-letter queue at once, without retries."""


class JobTimeoutError(PikkuQueueError):
    """An attempt ran longer than the processor's `timeout`."""


class PayloadValidationError(PikkuQueueError):
    """A payload does not match the queue's input type; raised at enqueue, nothing was sent."""

    def __init__(self, queue: str, detail: str, fields: tuple[str, ...] = ()) -> None:
        super().__init__(f"invalid payload for queue {queue!r}: {detail}")
        self.queue = queue
        self.detail = detail
        #: The fields that are wrong, dotted (`address.zip`; `[3].email` for item 3 of an
        #: `enqueue_many`), when validation named them.
        self.fields = fields


class InvalidEnqueueOptionsError(PikkuQueueError, ValueError):
    """A job's enqueue options (delay, priority, job_id, repeat) break a rule; nothing was sent."""


class UnknownQueueError(PikkuQueueError):
    """A queue name that no registered processor serves."""


class BackendError(PikkuQueueError):
    """A backend URL, connection or limit problem (message too large, delay out of range…)."""


class PartialEnqueueError(BackendError):
    """A bulk enqueue sent some jobs and not others. `job_ids[i]` is the id of request `i`, or
    None when that one was not sent; `failures` maps each such index to the reason."""

    def __init__(self, job_ids: list[str | None], failures: dict[int, str]) -> None:
        first = min(failures)
        super().__init__(
            f"{len(failures)} of {len(job_ids)} jobs were not enqueued "
            f"(job {first}: {failures[first]}); the others were"
        )
        self.job_ids = job_ids
        self.failures = failures


class JobFailedError(PikkuQueueError):
    """`JobHandle.result()` on a job that failed for good (dead-lettered)."""
