"""Every option a processor or a job can carry, as frozen pydantic models.

The runtime and the generator validate with these same models, so a value the scanner accepts
at generate time is exactly a value the worker accepts at run time. Times are milliseconds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Annotated, Any, Literal, NamedTuple, TypedDict, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    field_validator,
    model_validator,
)

from pikku_queue.cron import CronError, parse_cron

QUEUE_NAME_PATTERN = r"^[A-Za-z0-9_.\-]{1,80}$"
_QUEUE_NAME_RE = re.compile(QUEUE_NAME_PATTERN)
MAX_QUEUE_NAME_LENGTH = 80
#: BullMQ's rule: 1 is the highest priority, 2**21 - 1 the lowest (BullMQ's PRIORITY_LIMIT;
#: one more and its sort scores pass 2**53 and collide).
MIN_PRIORITY = 1
MAX_PRIORITY = 2_097_151
#: The job-id rule, the same on every backend, so an id that works on SQLite today does not
#: lose jobs on Redis tomorrow: at most SQS's 128 characters for a FIFO MessageDeduplicationId,
#: only the characters SQS allows there (ASCII letters, digits, punctuation), no ':' (BullMQ
#: splits keys on it; pikkugen's own keys hold it) and not integer-like (BullMQ's own ids are
#: integers: a custom "3" collides with the third auto id).
MAX_JOB_ID_LENGTH = 128
_JOB_ID_PUNCTUATION = "!\"#$%&'()*+,-./;<=>?@[\\]^_`{|}~"  # SQS's set, minus ':'
_JOB_ID_RE = re.compile(r"^[A-Za-z0-9" + re.escape(_JOB_ID_PUNCTUATION) + r"]+$")
_INTEGER_LIKE_RE = re.compile(r"^[+-]?[0-9]+$")
JOB_ID_HINT = "use a prefix, e.g. job_id='order-123' instead of '123'"
#: The longest delay any option can ask for (ten years, in ms): a job's `delay`, a processor's
#: `delay`, a retry's `delay` and `max_delay` (and so every computed backoff), a schedule's
#: `every`. A backend stores when a job may run, now + delay, and every store holds that with
#: room to spare: SQLite's 64-bit INTEGER, the 64-bit integers bullmq-py packs its script
#: arguments in, the JavaScript numbers Node BullMQ reads (exact below 2**53), BullMQ's
#: delayed-set score (the run-at time × 0x1000 in a double, exact to the millisecond below
#: 2**53 ms) and Python's `datetime` (year 9999), in which monitors show it. Backends with a
#: shorter limit declare theirs (`Capabilities.max_delay_ms`: SQS 900 s, Cloudflare 12 h).
MAX_DELAY_MS = 3650 * 86_400_000

#: Options are read strictly: an `int` option takes an int, not a bool (`True` is 1 to
#: Python) nor a numeric string ("5") nor a float; a `bool` option takes True or False, not
#: "yes" or 1; a text option takes a str, not bytes. pydantic's default (lax) mode would
#: convert each of these silently, so `concurrency=True` or `timeout="5000"` would reach the
#: registry as 1 and 5000. A float option (`factor`, `jitter`) still takes an int, which is a
#: number of that kind. Collections and sub-models keep their ordinary forms: `events` as a
#: list, `retry_options={"attempts": 3}`, `repeat={"cron": ...}`.
StrictInteger = Annotated[int, Strict()]
StrictNumber = Annotated[float, Strict()]
StrictFlag = Annotated[bool, Strict()]
StrictText = Annotated[str, Strict()]

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


def job_id_problem(job_id: str) -> str | None:
    """Why `job_id` breaks the job-id rule (see `MAX_JOB_ID_LENGTH`), or None when it is fine."""
    if not job_id:
        return "a job_id cannot be empty"
    if len(job_id) > MAX_JOB_ID_LENGTH:
        return f"a job_id has at most {MAX_JOB_ID_LENGTH} characters (got {len(job_id)})"
    if _INTEGER_LIKE_RE.match(job_id):
        return (
            f"a job_id cannot be an integer ({job_id!r}): BullMQ numbers its own jobs 1, 2, 3… "
            f"and a custom id like that overwrites one of them; {JOB_ID_HINT}"
        )
    if ":" in job_id:
        return (
            f"a job_id cannot contain ':' ({job_id!r}): BullMQ and pikkugen build Redis keys "
            "with it; use '-' or '_' instead, e.g. job_id='order-123'"
        )
    if not _JOB_ID_RE.match(job_id):
        return (
            f"a job_id may only hold ASCII letters, digits and punctuation other than ':' "
            f"(what an SQS FIFO deduplication id allows), no spaces ({job_id!r}); "
            "e.g. job_id='order-123'"
        )
    return None


class OptionProblem(NamedTuple):
    """One rule an options model found broken: where (`("retry_options", "attempts")`), the
    message, and pydantic's error type (`int_type`, `extra_forbidden`, ...)."""

    where: tuple[int | str, ...]
    message: str
    kind: str


def option_problems(exc: ValidationError) -> Iterator[OptionProblem]:
    """Each rule an options model found broken: pydantic's message, and for a value of the
    wrong type what was given (`Input should be a valid integer, got bool True`), since a
    strict option refuses values that look right (`True`, `"5"`). The one rendering of these
    errors: the scanner's PK203 and `InvalidEnqueueOptionsError` use it."""
    for error in exc.errors():
        message = str(error["msg"]).removeprefix("Value error, ")
        kind = str(error["type"])
        if kind.endswith("_type"):
            given = error.get("input")
            shown = repr(given)
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            message += f", got {type(given).__name__} {shown}"
        yield OptionProblem(tuple(error["loc"]), message, kind)


def validate_job_id(job_id: str) -> str:
    problem = job_id_problem(job_id)
    if problem is not None:
        raise ValueError(problem)
    return job_id


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

    attempts: StrictInteger = Field(default=1, ge=1, le=10_000)
    backoff: Literal["fixed", "exponential"] = "fixed"
    delay: StrictInteger = Field(default=0, ge=0, le=MAX_DELAY_MS)
    max_delay: StrictInteger | None = Field(default=None, ge=0, le=MAX_DELAY_MS)
    factor: StrictNumber = Field(default=2.0, ge=1.0, le=100.0)
    #: Fraction of the computed delay that is randomised (0 = none, 1 = anywhere in [0, delay]).
    jitter: StrictNumber = Field(default=0.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _max_delay_not_below_delay(self) -> RetryOptions:
        if self.max_delay is not None and self.max_delay < self.delay:
            raise ValueError(f"max_delay ({self.max_delay}) must be >= delay ({self.delay})")
        return self

    def base_delay_ms(self, failed_attempt: int) -> int:
        """The delay before the next try after try number `failed_attempt` (1-based) failed,
        before jitter; never more than `max_delay`, nor than `MAX_DELAY_MS` (an exponential
        backoff without `max_delay` over thousands of attempts passes any float: it is capped,
        not an OverflowError in the worker)."""
        ceiling = float(MAX_DELAY_MS if self.max_delay is None else self.max_delay)
        if self.backoff == "fixed":
            raw = float(self.delay)
        else:
            try:
                raw = self.delay * self.factor ** max(failed_attempt - 1, 0)
            except OverflowError:
                raw = ceiling
        return int(min(raw, ceiling))


class BatchOptions(_Frozen):
    """Gather up to `size` jobs, or what arrived within `timeout` ms of the first, into one call."""

    size: StrictInteger = Field(ge=1, le=10_000)
    timeout: StrictInteger = Field(default=1000, ge=0, le=3_600_000)


class Repeat(_Frozen):
    """A recurring schedule: a 5-field cron expression (UTC) or a fixed interval in ms."""

    cron: StrictText | None = None
    every: StrictInteger | None = Field(default=None, ge=1000, le=MAX_DELAY_MS)
    limit: StrictInteger | None = Field(default=None, ge=1)

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


#: A payload field a `RateLimit.group_key` or a `Dedupe.key` placeholder names: a Python
#: identifier (a top-level field of the input type; the generator checks it exists).
_FIELD_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: One `{field}` placeholder of a `Dedupe.key` template.
_PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")
#: The longest rate-limit window and deduplication window: thirty days (what a limit or a
#: debounce is for; a Redis key's PEXPIRE and SQLite's integers hold far more).
MAX_WINDOW_MS = 30 * 86_400_000
MAX_DEDUPE_KEY_LENGTH = 128


class RateLimit(_Frozen):
    """At most `max` job starts per window of `per_ms` ms, across every worker of the backend
    (not per worker). A window begins at the first start after the previous one ended (BullMQ's
    queue rate limiter, which the Redis backend uses). A job that meets the limit waits: it is
    not failed and no attempt is counted. `group_key`: a payload field; each of its values gets
    its own limit (per tenant), where the backend supports it."""

    max: StrictInteger = Field(ge=1, le=1_000_000)
    per_ms: StrictInteger = Field(ge=1, le=MAX_WINDOW_MS)
    group_key: StrictText | None = None

    @field_validator("group_key")
    @classmethod
    def _group_key_is_a_field(cls, value: str | None) -> str | None:
        if value is not None and not _FIELD_NAME_RE.match(value):
            raise ValueError(
                f"group_key names a payload field (an identifier such as 'tenant_id'), got {value!r}"
            )
        return value


DedupeMode = Literal["drop", "replace", "extend"]


class UnrenderableDedupeKey(ValueError):
    """A payload that lacks a field a `Dedupe.key` names (or holds a non-scalar there)."""


class Dedupe(_Frozen):
    """Within `ttl_ms` of a job whose key (`key`, a template over payload fields such as
    `"{user_id}"` or `"report-{account}-{month}"`) is the same:

    - `drop`: the new job is dropped; its handle points to the first job.
    - `replace` (debounce): while the earlier job is still delayed (not yet due), it is removed
      and the new job (its payload, its delay) takes its place, and the window starts again;
      once the earlier job is due or running, the new one is dropped as with `drop`.
    - `extend`: the new job is dropped, the window starts again from it, and the earlier job,
      while still delayed, has its delay pushed back to the new job's.

    The rule is BullMQ's deduplication (throttle, debounce and extend modes), which the Redis
    backend uses, so Node producers with the same deduplication id interoperate."""

    key: StrictText
    ttl_ms: StrictInteger = Field(ge=1, le=MAX_WINDOW_MS)
    mode: DedupeMode = "drop"

    @field_validator("key")
    @classmethod
    def _key_template(cls, value: str) -> str:
        if not value:
            raise ValueError("a dedupe key cannot be empty")
        if len(value) > MAX_DEDUPE_KEY_LENGTH:
            raise ValueError(
                f"a dedupe key has at most {MAX_DEDUPE_KEY_LENGTH} characters (got {len(value)})"
            )
        for name in _PLACEHOLDER_RE.findall(value):
            if not _FIELD_NAME_RE.match(name):
                raise ValueError(
                    f"a dedupe key placeholder names a payload field, e.g. '{{user_id}}', "
                    f"got '{{{name}}}'"
                )
        if "{" in _PLACEHOLDER_RE.sub("", value) or "}" in _PLACEHOLDER_RE.sub("", value):
            raise ValueError(f"a dedupe key has an unmatched '{{' or '}}': {value!r}")
        return value

    @property
    def fields(self) -> tuple[str, ...]:
        """The payload fields the key names, in order, each once."""
        return tuple(dict.fromkeys(_PLACEHOLDER_RE.findall(self.key)))

    def render(self, payload: Any) -> str:
        """The key of one job: each `{field}` replaced by the payload's value (text as is,
        other scalars as JSON: `true`, `3`, `null`). A payload that is not an object, lacks a
        field or holds a list or object there raises `UnrenderableDedupeKey`."""

        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            if not isinstance(payload, Mapping) or name not in payload:
                raise UnrenderableDedupeKey(
                    f"the dedupe key {self.key!r} names the field {name!r}, which the payload "
                    "does not have"
                )
            found = payload[name]
            if isinstance(found, str):
                return found
            if found is None or isinstance(found, bool | int | float):
                return json.dumps(found)
            raise UnrenderableDedupeKey(
                f"the dedupe key {self.key!r} names the field {name!r}, which holds "
                f"{type(found).__name__}, not text or a number"
            )

        return _PLACEHOLDER_RE.sub(value, self.key)


class RepeatDict(TypedDict, total=False):
    """`Repeat` as a mapping (`{"cron": "0 2 * * *"}`, as the seed writes it): what the typed
    client's `repeat=` takes besides a `Repeat`. The model validates it (exactly one of cron
    or every); this only types the keys, and an import-time check keeps them the model's
    fields."""

    cron: str | None
    every: int | None
    limit: int | None


if set(RepeatDict.__annotations__) != set(Repeat.model_fields):
    raise AssertionError("RepeatDict must name exactly the Repeat fields")


class ProcessorOptions(_Frozen):
    """The options of a queue processor (everything `queue_processor` takes except the name)."""

    concurrency: StrictInteger = Field(default=1, ge=1, le=10_000)
    max_concurrency: StrictInteger | None = Field(default=None, ge=1, le=100_000)
    retry_options: RetryOptions = RetryOptions()
    priority: StrictInteger | None = Field(default=None, ge=MIN_PRIORITY, le=MAX_PRIORITY)
    delay: StrictInteger = Field(default=0, ge=0, le=MAX_DELAY_MS)
    timeout: StrictInteger | None = Field(default=None, gt=0)
    dead_letter_queue: StrictText | None = None
    max_stalled_count: StrictInteger = Field(default=1, ge=0, le=1000)
    metrics: StrictFlag = False
    events: tuple[EventName, ...] = ALL_EVENTS
    batch: BatchOptions | None = None
    #: A processor-level schedule (arq's `cron_jobs`, Celery beat): each run enqueues `{}`.
    #: Workers register it at start under one key per queue, replacing a changed one; the SAM
    #: template turns it into an EventBridge Scheduler schedule.
    repeat: Repeat | None = None
    #: At most `max` job starts per `per_ms` across every worker of the backend.
    rate_limit: RateLimit | None = None
    #: The deduplication of this queue's jobs (a job's own `dedupe=` at enqueue wins).
    dedupe: Dedupe | None = None

    @field_validator("dead_letter_queue")
    @classmethod
    def _dlq_name_valid(cls, value: str | None) -> str | None:
        return None if value is None else validate_queue_name(value)

    @field_validator("events")
    @classmethod
    def _events_unique(cls, value: tuple[EventName, ...]) -> tuple[EventName, ...]:
        return tuple(sorted(set(value), key=ALL_EVENTS.index))


class ProcessorOptionArgs(TypedDict, total=False):
    """`ProcessorOptions` as keyword arguments: the `**options` of `queue_processor` and
    `add_queue_processor` (`Unpack[ProcessorOptionArgs]`). The model is the one table of the
    processor options (defaults, ranges, validation, the scanner's known keywords, the
    registry); this only types the keywords, a sub-model also as a mapping, and None for
    "the default", and an import-time check keeps its keys the model's fields."""

    concurrency: int
    max_concurrency: int | None
    retry_options: RetryOptions | Mapping[str, Any] | None
    priority: int | None
    delay: int
    timeout: int | None
    dead_letter_queue: str | None
    max_stalled_count: int
    metrics: bool
    events: Iterable[EventName] | None
    batch: BatchOptions | Mapping[str, Any] | None
    repeat: Repeat | Mapping[str, Any] | None
    rate_limit: RateLimit | Mapping[str, Any] | None
    dedupe: Dedupe | Mapping[str, Any] | None


if set(ProcessorOptionArgs.__annotations__) != set(ProcessorOptions.model_fields):
    raise AssertionError("ProcessorOptionArgs must name exactly the ProcessorOptions fields")


def processor_options(args: ProcessorOptionArgs) -> ProcessorOptions:
    """Validate keyword arguments into `ProcessorOptions` (None: the field's default)."""
    raw: dict[str, Any] = {k: v for k, v in args.items() if v is not None}
    if "events" in raw:
        raw["events"] = tuple(raw["events"])
    return ProcessorOptions.model_validate(raw)


class QueueDefinition(_Frozen):
    """A queue's name plus its processor options: what the generated registry stores."""

    name: StrictText
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


class EnqueueOptions(_Frozen):
    """Per-job options given at enqueue time; None falls back to the processor's defaults.

    Every enqueue path (the typed client, `queue_job`, `enqueue_many`, `pikkugen enqueue`)
    validates through this one model, so every backend refuses the same values. `repeat`
    also takes a mapping, e.g. `{"cron": "0 3 * * *"}`.
    """

    delay: StrictInteger | None = Field(default=None, ge=0, le=MAX_DELAY_MS)
    priority: StrictInteger | None = Field(default=None, ge=MIN_PRIORITY, le=MAX_PRIORITY)
    job_id: StrictText | None = None
    repeat: Repeat | None = None
    dedupe: Dedupe | None = None

    @field_validator("job_id")
    @classmethod
    def _job_id_rule(cls, value: str | None) -> str | None:
        return None if value is None else validate_job_id(value)
