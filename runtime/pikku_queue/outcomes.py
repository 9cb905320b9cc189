"""What the engine returns, and what it is handed: plain values every layer can import.

`Delivery` is one job as a backend hands it to the engine; `Completed`, `Retry` and
`DeadLetter` (together `Outcome`) are the engine's verdict, which each backend translates into
its own verbs. They live below the engine, the payload reader and the backend contract so that
each of those can name them without importing the others.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pikku_queue.errors import without_error_urls

if TYPE_CHECKING:
    from pikku_queue.context import ProgressSink


@dataclass(frozen=True)
class Delivery:
    """One job handed to the engine by a backend."""

    job_id: str
    queue: str
    payload: Any  # decoded JSON
    attempt: int  # 1-based: the first try is attempt 1
    enqueued_at_ms: int
    progress: ProgressSink | None = None
    #: The W3C trace context the job was enqueued under (`traceparent`, `tracestate`), carried
    #: beside the payload by the backend; `pikku_queue.tracing` links the attempt to it.
    trace_context: Mapping[str, str] | None = None
    #: "json", or how `payload` holds a payload the backend's reader refused (`payloads`).
    payload_encoding: str = "json"
    #: Why the backend's reader refused the stored payload (`pikku_queue.payloads`): the
    #: engine dead-letters such a job as `invalid_payload` without running it, with the same
    #: log line, events and counts as any invalid payload, on every backend.
    payload_error: ErrorInfo | None = None
    #: Why the backend's reader refused another stored field of the job (its priority,
    #: attempts, times, state, trace context, an SQS attribute…: `pikku_queue.fields`): the
    #: engine dead-letters such a job as `invalid_record` without running it, the message
    #: naming the field and the value; the other fields of the delivery are then defaults.
    record_error: ErrorInfo | None = None


@dataclass(frozen=True)
class ErrorInfo:
    type: str
    message: str
    traceback: str = ""

    @classmethod
    def from_exception(cls, exc: BaseException) -> ErrorInfo:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return cls(
            type=type(exc).__name__,
            message=without_error_urls(str(exc)),
            traceback=without_error_urls(text),
        )

    def as_dict(self) -> dict[str, str]:
        return {"type": self.type, "message": self.message, "traceback": self.traceback}


@dataclass(frozen=True)
class Completed:
    result: Any  # JSON-ready (already dumped through the output type)
    kind: Literal["completed"] = "completed"


@dataclass(frozen=True)
class Retry:
    delay_ms: int
    error: ErrorInfo
    kind: Literal["retry"] = "retry"


#: Why a job failed for good. `invalid_payload`: the payload cannot be read or is not the
#: processor's input type; `invalid_record`: another stored field of the job holds a value no
#: pikkugen writer writes (`pikku_queue.fields`); `non_retryable`: a `NonRetryableError`;
#: `attempts_exhausted`: the last attempt failed; `stalled`: its lease expired past
#: `max_stalled_count`.
DeadLetterReason = Literal[
    "invalid_payload", "invalid_record", "non_retryable", "attempts_exhausted", "stalled"
]
#: Every reason, in the order docs and views list them.
DEAD_LETTER_REASONS: tuple[DeadLetterReason, ...] = (
    "invalid_payload",
    "invalid_record",
    "non_retryable",
    "attempts_exhausted",
    "stalled",
)


@dataclass(frozen=True)
class DeadLetter:
    reason: DeadLetterReason
    error: ErrorInfo
    kind: Literal["dead_letter"] = "dead_letter"


Outcome = Completed | Retry | DeadLetter


def stalled_error(stalls: int, max_stalled_count: int) -> ErrorInfo:
    """The error of a job that stalled past `max_stalled_count`, the same text on every backend
    (SQLite counts expired leases, Redis BullMQ's stalled counter)."""
    return ErrorInfo(
        type="StalledJobError",
        message=(
            f"the job's lease expired {stalls} time(s) (its worker died or blocked);"
            f" max_stalled_count is {max_stalled_count}"
        ),
    )
