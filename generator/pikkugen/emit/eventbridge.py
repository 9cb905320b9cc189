"""A processor's `Repeat` as an EventBridge Scheduler expression, or why it cannot be one.

EventBridge's cron has six fields (minute hour day-of-month month day-of-week year), numbers
day-of-week 1-7 from Sunday, and requires `?` in one of the two day fields: it cannot say
"the 1st of the month or any Monday", which a 5-field cron with both day fields restricted
means. Every field is rendered from the set `pikku_queue.cron` parsed, not from the text, so
names, macros, steps and Sunday-as-7 all come out in EventBridge's own numbering, and what
the schedule fires on is exactly what the embedded backends fire on.

An interval becomes `rate(N unit)`, which counts whole minutes at the least.
"""

from __future__ import annotations

from collections.abc import Iterable

from pikku_queue.cron import parse_cron
from pikku_queue.options import Repeat

MINUTE_MS = 60_000
_UNITS = (("day", 86_400_000), ("hour", 3_600_000), ("minute", MINUTE_MS))


class NotExpressible(ValueError):
    """A schedule EventBridge Scheduler cannot run as written."""


def compact_values(values: Iterable[int]) -> str:
    """Sorted values as a list of single values and `a-b` ranges (runs of three or more)."""
    ordered = sorted(set(values))
    parts: list[str] = []
    start = 0
    while start < len(ordered):
        end = start
        while end + 1 < len(ordered) and ordered[end + 1] == ordered[end] + 1:
            end += 1
        if end - start >= 2:
            parts.append(f"{ordered[start]}-{ordered[end]}")
        else:
            parts.extend(str(v) for v in ordered[start : end + 1])
        start = end + 1
    return ",".join(parts)


def field_values(values: frozenset[int], low: int, high: int) -> str:
    return "*" if values == frozenset(range(low, high + 1)) else compact_values(values)


def cron_expression(cron: str) -> str:
    """`0 2 * * *` → `cron(0 2 * * ? *)`; raises NotExpressible."""
    schedule = parse_cron(cron)
    all_days = frozenset(range(1, 32))
    all_weekdays = frozenset(range(7))
    day_restricted = not schedule.any_day and schedule.days != all_days
    weekday_restricted = not schedule.any_weekday and schedule.weekdays != all_weekdays
    if not schedule.any_day and not schedule.any_weekday:
        # Both fields written out: cron fires when either matches. A field covering every
        # day makes the whole condition "every day".
        if not day_restricted or not weekday_restricted:
            day_restricted = weekday_restricted = False
        else:
            raise NotExpressible(
                f"cron {cron!r} restricts both day-of-month and day-of-week (it fires when "
                "either matches); EventBridge needs '?' in one of them"
            )
    if weekday_restricted:
        day, weekday = "?", compact_values(d + 1 for d in schedule.weekdays)  # SUN=1 … SAT=7
    else:
        day = field_values(schedule.days, 1, 31) if day_restricted else "*"
        weekday = "?"
    minute = field_values(schedule.minutes, 0, 59)
    hour = field_values(schedule.hours, 0, 23)
    month = field_values(schedule.months, 1, 12)
    return f"cron({minute} {hour} {day} {month} {weekday} *)"


def rate_expression(every_ms: int) -> str:
    """60000 → `rate(1 minute)`, 7200000 → `rate(2 hours)`; raises NotExpressible."""
    if every_ms % MINUTE_MS:
        raise NotExpressible(
            f"Repeat(every={every_ms}) is not a whole number of minutes; EventBridge rate "
            "schedules count whole minutes (at least 1)"
        )
    for unit, size in _UNITS:
        if every_ms % size == 0:
            count = every_ms // size
            return f"rate({count} {unit}{'' if count == 1 else 's'})"
    raise AssertionError("unreachable: minutes divide every_ms")


def schedule_expression(repeat: Repeat) -> str:
    """The ScheduleExpression of an `AWS::Scheduler::Schedule`; raises NotExpressible."""
    if repeat.cron is not None:
        return cron_expression(repeat.cron)
    assert repeat.every is not None
    return rate_expression(repeat.every)
