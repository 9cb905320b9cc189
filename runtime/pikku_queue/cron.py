"""A small 5-field cron parser and next-fire calculator (UTC).

The runtime core must stay pure Python + pydantic (it also runs on Cloudflare's Pyodide), and
both the generator (validation at generate time) and the embedded backends (scheduling) need
the same reading of an expression, so it lives here rather than behind a third-party package.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
}
_DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)


class CronError(ValueError):
    """An expression that is not a valid 5-field cron expression."""


@dataclass(frozen=True)
class CronSchedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    any_day: bool
    any_weekday: bool

    def matches(self, when: datetime) -> bool:
        if when.minute not in self.minutes or when.hour not in self.hours:
            return False
        return when.month in self.months and self._day_matches(when)

    def next_after(self, after_ms: int) -> int:
        """The first fire time strictly after `after_ms` (epoch milliseconds)."""
        start = datetime.fromtimestamp(after_ms / 1000, tz=UTC).replace(second=0, microsecond=0)
        when = start + timedelta(minutes=1)
        limit = when + timedelta(days=366 * 5)
        while when < limit:
            if when.month not in self.months:
                when = (when.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
                continue
            if not self._day_matches(when):
                when = when.replace(hour=0, minute=0) + timedelta(days=1)
                continue
            if when.hour not in self.hours:
                when = when.replace(minute=0) + timedelta(hours=1)
                continue
            if when.minute in self.minutes:
                return int(when.timestamp() * 1000)
            when += timedelta(minutes=1)
        raise CronError("the expression never fires within five years")

    def _day_matches(self, when: datetime) -> bool:
        day_ok = when.day in self.days
        weekday_ok = (when.isoweekday() % 7) in self.weekdays
        if self.any_day and self.any_weekday:
            return True
        if self.any_day:
            return weekday_ok
        if self.any_weekday:
            return day_ok
        return day_ok or weekday_ok


def _value(token: str, low: int, high: int, names: dict[str, int], field: str) -> int:
    lowered = token.lower()
    if lowered in names:
        return names[lowered]
    if not token.isdigit():
        raise CronError(f"{field}: {token!r} is not a number")
    number = int(token)
    if not low <= number <= high:
        raise CronError(f"{field}: {number} is outside {low}-{high}")
    return number


def _parse_field(text: str, low: int, high: int, names: dict[str, int], field: str) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise CronError(f"{field}: empty list item in {text!r}")
        range_part, _, step_part = part.partition("/")
        step = 1
        if step_part:
            if not step_part.isdigit() or int(step_part) == 0:
                raise CronError(f"{field}: bad step {step_part!r}")
            step = int(step_part)
        if range_part == "*":
            start, end = low, high
        elif "-" in range_part:
            first, _, last = range_part.partition("-")
            start = _value(first, low, high, names, field)
            end = _value(last, low, high, names, field)
            if start > end:
                raise CronError(f"{field}: range {range_part!r} runs backwards")
        else:
            start = _value(range_part, low, high, names, field)
            end = high if step_part else start
        values.update(range(start, end + 1, step))
    return values


def parse_cron(expression: str) -> CronSchedule:
    """Parse a 5-field expression (minute hour day-of-month month day-of-week) or a macro."""
    text = _MACROS.get(expression.strip().lower(), expression.strip())
    parts = text.split()
    if len(parts) != 5:
        raise CronError(
            f"cron expression {expression!r} has {len(parts)} fields; expected 5 "
            "(minute hour day-of-month month day-of-week)"
        )
    parsed = [
        _parse_field(part, low, high, names, field)
        for part, (field, low, high, names) in zip(parts, _FIELDS, strict=True)
    ]
    weekdays = {d % 7 for d in parsed[4]}
    return CronSchedule(
        minutes=frozenset(parsed[0]),
        hours=frozenset(parsed[1]),
        days=frozenset(parsed[2]),
        months=frozenset(parsed[3]),
        weekdays=frozenset(weekdays),
        any_day=parts[2] == "*",
        any_weekday=parts[4] == "*",
    )
