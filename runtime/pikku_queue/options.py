"""Every option a processor or a job can carry, as frozen pydantic models.

The runtime and the generator validate with these same models, so a value the scanner accepts
at generate time is exactly a value the worker accepts at run time. Times are milliseconds.
"""

from __future__ import annotations

import re
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pikku_queue.cron import CronError, parse_cron

QUEUE_NAME_PATTERN = r"^[A-Za-z0-9_.\-]{1,80}$"
_QUEUE_NAME_RE = re.compile(QUEUE_NAME_PATTERN)
MAX_QUEUE_NAME_LENGTH = 80
#: BullMQ's rule: 1 is the highest priority, 2**21 the lowest.
MIN_PRIORITY = 1
MAX_PRIORITY = 2_097_152

EventName = Literal["completed", "failed", "stalled", "retrying", "dead_lettered", "progress"]
ALL_EVENTS: tuple[EventName, ...] = get_args(EventName)


def queue_name_problem(name: str) -> str | None:
    """Why `name` is not a valid queue name, or None when it is."""
    if not name:
        return "a queue name cannot be empty"
    if len(name) > MAX_QUEUE_NAME_LENGTH:
        return f"a queue name has at most {MAX_QUEUE_NAME_LENGTH} characters (got {len(name)})"
    if not _QUEUE_NAME_RE.match(name):
        return "a queue name may only hold letters, digits, '-', '_' and '.'"
    return None


def validate_queue_name(name: str) -> str:
    problem = queue_name_problem(name)
    if problem is not None:
        raise ValueError(f"{problem}: {name!r}")
    return name


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RetryOptions(_Frozen):
    """How often a job is tried and how long to wait between tries.

    `attempts` counts the first try: attempts=3 is the initial try plus two retries.
    """

    attempts: int = Field(default=1, ge=1, le=10_000)
    backoff: Literal["fixed", "exponential"] = "fixed"
    delay: int = Field(default=0, ge=0)
    max_delay: int | None = Field(default=None, ge=0)
    factor: float = Field(default=2.0, ge=1.0, le=100.0)
    #: Fraction of the computed delay that is randomised (0 = none, 1 = anywhere in [0, delay]).
    jitter: float = Field(default=0.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _max_delay_not_below_delay(self) -> RetryOptions:
        if self.max_delay is not None and self.max_delay < self.delay:
            raise ValueError(f"max_delay ({self.max_delay}) must be >= delay ({self.delay})")
        return self

    def base_delay_ms(self, failed_attempt: int) -> int:
        """The delay before the next try after try number `failed_attempt` (1-based) failed,
        before jitter."""
        if self.backoff == "fixed":
            raw = float(self.delay)
        else:
            raw = self.delay * self.factor ** max(failed_attempt - 1, 0)
        if self.max_delay is not None:
            raw = min(raw, float(self.max_delay))
        return int(raw)


class BatchOptions(_Frozen):
    """Gather up to `size` jobs, or what arrived within `timeout` ms of the first, into one call."""

    size: int = Field(ge=1, le=10_000)
    timeout: int = Field(default=1000, ge=0, le=3_600_000)


class Repeat(_Frozen):
    """A recurring schedule: a 5-field cron expression (UTC) or a fixed interval in ms."""

    cron: str | None = None
    every: int | None = Field(default=None, ge=1000)
    limit: int | None = Field(default=None, ge=1)

    @field_validator("cron")
    @classmethod
    def _cron_parses(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_cron(value)
            except CronError as exc:
                raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> Repeat:
        if (self.cron is None) == (self.every is None):
            raise ValueError("Repeat takes exactly one of cron= or every=")
        return self


class ProcessorOptions(_Frozen):
    """The options of a queue processor (everything `queue_processor` takes except the name)."""

    concurrency: int = Field(default=1, ge=1, le=10_000)
    max_concurrency: int | None = Field(default=None, ge=1, le=100_000)
    retry_options: RetryOptions = RetryOptions()
    priority: int | None = Field(default=None, ge=MIN_PRIORITY, le=MAX_PRIORITY)
    delay: int = Field(default=0, ge=0)
    timeout: int | None = Field(default=None, gt=0)
    dead_letter_queue: str | None = None
    max_stalled_count: int = Field(default=1, ge=0, le=1000)
    metrics: bool = False
    events: tuple[EventName, ...] = ALL_EVENTS
    batch: BatchOptions | None = None
    #: A processor-level schedule (arq's `cron_jobs`, Celery beat): each run enqueues `{}`.
    #: Workers register it at start under one key per queue, replacing a changed one; the SAM
    #: template turns it into an EventBridge Scheduler schedule.
    repeat: Repeat | None = None

    @field_validator("dead_letter_queue")
    @classmethod
    def _dlq_name_valid(cls, value: str | None) -> str | None:
        return None if value is None else validate_queue_name(value)

    @field_validator("events")
    @classmethod
    def _events_unique(cls, value: tuple[EventName, ...]) -> tuple[EventName, ...]:
        return tuple(sorted(set(value), key=ALL_EVENTS.index))


class QueueDefinition(_Frozen):
    """A queue's name plus its processor options: what the generated registry stores."""

    name: str
    options: ProcessorOptions = ProcessorOptions()

    @field_validator("name")
    @classmethod
    def _name_valid(cls, value: str) -> str:
        return validate_queue_name(value)

    @model_validator(mode="after")
    def _dlq_is_not_itself(self) -> QueueDefinition:
        if self.options.dead_letter_queue == self.name:
            raise ValueError(
                f"dead_letter_queue cannot be the queue itself ({self.name!r}): "
                "failed jobs would be retried forever"
            )
        return self


class JobOptions(_Frozen):
    """Per-job options given at enqueue time; None falls back to the processor's defaults."""

    delay: int | None = Field(default=None, ge=0)
    priority: int | None = Field(default=None, ge=MIN_PRIORITY, le=MAX_PRIORITY)
    job_id: str | None = Field(default=None, min_length=1, max_length=256)
    repeat: Repeat | None = None
