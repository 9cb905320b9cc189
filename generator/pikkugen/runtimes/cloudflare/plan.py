"""What the Cloudflare runtime generates, as data: bindings, consumer settings, cron triggers,
and what a processor asks for that Cloudflare cannot do.

Every number comes from the processor's options, clamped to Cloudflare's limits
(`pikku_queue.adapters.cloudflare.limits`, one home with the runtime); what is clamped or
cannot be expressed is reported by `problems`, which the configuration checks (PK802/PK804)
render.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from pikku_queue.adapters.cloudflare.limits import (
    DEFAULT_CPU_MS,
    MAX_BATCH_TIMEOUT_SECONDS,
    MAX_CONSUMER_BATCH,
    MAX_CPU_MS,
    MAX_DELAY_SECONDS,
    MAX_QUEUE_NAME,
    MAX_RETRIES,
    binding_name,
    stalled_queue,
)
from pikku_queue.cron import parse_cron
from pikku_queue.options import ProcessorOptions, Repeat

from pikkugen.emit.eventbridge import NotExpressible, compact_values, field_values
from pikkugen.model import ProcessorDecl

#: Cloudflare's limit on concurrent consumer invocations (push-based).
MAX_CONSUMER_CONCURRENCY = 250
MINUTE_MS = 60_000

#: (kind, message, what to do instead); checks.py turns the kind into PK802/PK801/PK804.
Problem = tuple[Literal["out_of_range", "unsupported", "inexpressible"], str, str]


@dataclass(frozen=True)
class Consumer:
    queue: str
    max_batch_size: int
    max_batch_timeout: int
    max_retries: int
    #: Cloudflare's own dead-letter queue: `<queue>-stalled`, never pikkugen's record queue.
    dead_letter_queue: str | None
    retry_delay: int
    max_concurrency: int | None


def dead_letter_queue_of(decl: ProcessorDecl) -> str:
    """The processor's `dead_letter_queue`, else `<name>-dlq` (within 63 characters)."""
    explicit = decl.options.dead_letter_queue
    return explicit or decl.name[: MAX_QUEUE_NAME - len("-dlq")] + "-dlq"


def jobs_per_invocation(options: ProcessorOptions) -> int:
    """How many jobs one consumer invocation runs at once: a batch processor's whole batch
    (one call), else `concurrency` (the push core's bound)."""
    if options.batch is not None:
        return min(options.batch.size, MAX_CONSUMER_BATCH)
    return min(options.concurrency, MAX_CONSUMER_BATCH)


def consumer(decl: ProcessorDecl) -> Consumer:
    options = decl.options
    size = jobs_per_invocation(options)
    timeout = 0
    if options.batch is not None:
        timeout = min(MAX_BATCH_TIMEOUT_SECONDS, math.ceil(options.batch.timeout / 1000))
    retry = options.retry_options
    first_backoff = math.ceil(retry.base_delay_ms(1) / 1000)
    invocations = None
    if options.max_concurrency is not None:
        invocations = min(MAX_CONSUMER_CONCURRENCY, max(1, options.max_concurrency // size))
    return Consumer(
        queue=decl.name,
        max_batch_size=size,
        max_batch_timeout=timeout,
        max_retries=min(MAX_RETRIES, retry.attempts - 1),
        dead_letter_queue=stalled_queue(decl.name),
        retry_delay=min(MAX_DELAY_SECONDS, first_backoff),
        max_concurrency=invocations,
    )


#: The consumer of a `<queue>-stalled` queue: it only sends records on, so its retries wait a
#: minute each and are many; Cloudflare drops what it cannot place after that (logged).
STALLED_CONSUMER_RETRIES = MAX_RETRIES
STALLED_RETRY_DELAY = 60


def stalled_consumer(decl: ProcessorDecl) -> Consumer:
    return Consumer(
        queue=stalled_queue(decl.name),
        max_batch_size=10,
        max_batch_timeout=0,
        max_retries=STALLED_CONSUMER_RETRIES,
        dead_letter_queue=None,
        retry_delay=STALLED_RETRY_DELAY,
        max_concurrency=None,
    )


def cpu_ms(decls: Sequence[ProcessorDecl]) -> int | None:
    """The consumer's `limits.cpu_ms`: the largest processor `timeout` (a batch processor's
    too) when it is above Cloudflare's default of 30 s, at most 5 minutes; None: the default."""
    longest = max((d.options.timeout or 0 for d in decls), default=0)
    return min(longest, MAX_CPU_MS) if longest > DEFAULT_CPU_MS else None


def queues(decls: Sequence[ProcessorDecl]) -> list[str]:
    """Every queue the Worker produces to: the processors' and their dead-letter queues (not
    the `-stalled` queues: only Cloudflare writes to those)."""
    return sorted({d.name for d in decls} | {dead_letter_queue_of(d) for d in decls})


def bindings(decls: Sequence[ProcessorDecl]) -> dict[str, str]:
    return {name: binding_name(name) for name in queues(decls)}


def stalled(decls: Sequence[ProcessorDecl]) -> dict[str, str]:
    """`<queue>-stalled` → `<queue>`, the queues the Worker turns into `stalled` records."""
    return {stalled_queue(d.name): d.name for d in sorted(decls, key=lambda d: d.name)}


def cron_trigger(repeat: Repeat) -> str:
    """A processor's `repeat` as a Cloudflare cron trigger; raises NotExpressible.

    Rendered from the set `pikku_queue.cron` parsed: Cloudflare numbers weekdays 1-7 from
    Sunday (https://developers.cloudflare.com/workers/configuration/cron-triggers/), so a
    weekday field is written out in that numbering. An interval must divide an hour or a day
    into whole minutes, or no cron line fires on it."""
    if repeat.every is not None:
        return _interval(repeat.every)
    assert repeat.cron is not None
    schedule = parse_cron(repeat.cron)
    all_days = frozenset(range(1, 32))
    all_weekdays = frozenset(range(7))
    day_restricted = not schedule.any_day and schedule.days != all_days
    weekday_restricted = not schedule.any_weekday and schedule.weekdays != all_weekdays
    if day_restricted and weekday_restricted:
        raise NotExpressible(
            f"cron {repeat.cron!r} restricts both day-of-month and day-of-week (it fires when "
            "either matches); a Cloudflare cron trigger's Quartz-like syntax does not promise "
            "that rule, so restrict only one of them"
        )
    minute = field_values(schedule.minutes, 0, 59)
    hour = field_values(schedule.hours, 0, 23)
    month = field_values(schedule.months, 1, 12)
    day = field_values(schedule.days, 1, 31) if day_restricted else "*"
    weekday = compact_values(d + 1 for d in schedule.weekdays) if weekday_restricted else "*"
    return f"{minute} {hour} {day} {month} {weekday}"


def _interval(every_ms: int) -> str:
    if every_ms % MINUTE_MS:
        raise NotExpressible(
            f"Repeat(every={every_ms}) is not a whole number of minutes; Cloudflare cron "
            "triggers fire on whole minutes"
        )
    minutes = every_ms // MINUTE_MS
    if minutes < 60 and 60 % minutes == 0:
        return "* * * * *" if minutes == 1 else f"*/{minutes} * * * *"
    if minutes % 60 == 0 and 24 % (minutes // 60) == 0:
        hours = minutes // 60
        return "0 * * * *" if hours == 1 else f"0 */{hours} * * *"
    raise NotExpressible(
        f"Repeat(every={every_ms}) ({minutes} minutes) does not divide an hour or a day, so "
        "no cron trigger fires at that interval; use a cron expression"
    )


def crons(decls: Sequence[ProcessorDecl]) -> dict[str, tuple[str, ...]]:
    """cron trigger → the queues it enqueues `{}` to (expressible repeats only), sorted."""
    found: dict[str, list[str]] = {}
    for decl in sorted(decls, key=lambda d: d.name):
        if decl.options.repeat is None:
            continue
        try:
            cron = cron_trigger(decl.options.repeat)
        except NotExpressible:
            continue  # reported by problems() as an error
        found.setdefault(cron, []).append(decl.name)
    return {cron: tuple(found[cron]) for cron in sorted(found)}


def problems(decl: ProcessorDecl) -> Iterator[Problem]:
    """What the generated wrangler config cannot give this processor as declared."""
    options = decl.options
    name = decl.name
    if options.repeat is not None:
        try:
            cron_trigger(options.repeat)
        except NotExpressible as exc:
            yield (
                "inexpressible",
                f"queue {name!r}: {exc}",
                "use a cron expression that restricts one day field, or whole minutes dividing "
                "an hour or a day",
            )
        if options.repeat.limit is not None:
            yield (
                "unsupported",
                f"queue {name!r} sets Repeat(limit={options.repeat.limit}), which the "
                "cloudflare runtime cannot honour: a cron trigger has no run limit",
                "remove limit=",
            )
    if options.batch is not None:
        if options.batch.size > MAX_CONSUMER_BATCH:
            yield (
                "out_of_range",
                f"queue {name!r} sets batch size {options.batch.size}; a Cloudflare consumer "
                f"gets at most {MAX_CONSUMER_BATCH} messages a batch (max_batch_size)",
                f"use a batch size of at most {MAX_CONSUMER_BATCH}",
            )
        if options.batch.timeout > MAX_BATCH_TIMEOUT_SECONDS * 1000:
            yield (
                "out_of_range",
                f"queue {name!r} sets batch timeout {options.batch.timeout} ms; Cloudflare "
                f"waits at most {MAX_BATCH_TIMEOUT_SECONDS} s to fill a batch",
                f"use a batch timeout of at most {MAX_BATCH_TIMEOUT_SECONDS * 1000} ms",
            )
    elif options.concurrency > MAX_CONSUMER_BATCH:
        yield (
            "out_of_range",
            f"queue {name!r} sets concurrency={options.concurrency}; one Cloudflare consumer "
            f"invocation gets at most {MAX_CONSUMER_BATCH} messages (max_batch_size)",
            f"use concurrency of at most {MAX_CONSUMER_BATCH}",
        )
    if options.retry_options.attempts - 1 > MAX_RETRIES:
        yield (
            "out_of_range",
            f"queue {name!r} allows {options.retry_options.attempts} attempts; Cloudflare "
            f"retries a message at most {MAX_RETRIES} times (max_retries)",
            f"allow at most {MAX_RETRIES + 1} attempts",
        )
    if not decl.is_async and options.timeout is not None:
        yield (
            "unsupported",
            f"queue {name!r} sets timeout={options.timeout}, which the cloudflare runtime "
            f"cannot honour for {decl.function}: a Python Worker (Pyodide) has no threads, so "
            "a sync processor runs on the event loop and nothing can interrupt it",
            "make it `async def`",
        )
