"""The one rule for reading back what a backend stores for a job, field by field.

A backend reads back more than a payload: SQLite's columns (priority, attempts, times, state,
the trace context in `meta`…), BullMQ's hash fields, SQS's message attributes. Any of them can
hold what no pikkugen writer wrote (another program sharing the SQLite file, a Node producer, a
raw SQS send), and trusting one of them is what made a lease raise after it had leased its
batch (a `meta` that was not JSON), a sort raise (a text `priority`), and a worker retry the
same call for ever. So every backend decodes each field it reads through these functions,
which accept what pikkugen writes and nothing else: any other value is an `InvalidRecord`,
which the backend hands to the engine with the job (`Delivery.record_error`), and the engine
dead-letters that one job as `invalid_record`, the message naming the field and the value
(cut to `SHOWN_CHARS`). The job's neighbours never see it. (The payload has its own reader,
`pikku_queue.payloads`, and its own reason, `invalid_payload`.)

Integers are plain `int` (never `bool`) or their decimal text (SQS attributes and Redis hash
values are strings), within `0..MAX_STORED_INT` unless a field says otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

from pikku_queue.outcomes import DeadLetter, ErrorInfo
from pikku_queue.payloads import UndecodablePayload, decode_payload

#: The largest integer a stored count, time or id may hold: 2**53 - 1, the largest every
#: backend's readers hold exactly (JSON numbers in JavaScript: BullMQ's scripts, Node).
MAX_STORED_INT = 2**53 - 1
#: The longest lease a worker holds (the pull worker caps `--lease-ms` to it; SQS's longest
#: visibility timeout, 12 h): a stored lease ending later than this from now is no live
#: worker's, so it counts as ended.
MAX_LEASE_MS = 43_200_000
#: How much of a refused value a verdict quotes (its `repr`, cut).
SHOWN_CHARS = 80

#: The error type of an `invalid_record` verdict.
INVALID_RECORD_ERROR = "InvalidRecordError"

_DECIMAL = re.compile(r"-?[0-9]{1,19}")


class InvalidRecord(ValueError):
    """A stored field holding a value no pikkugen writer writes; carries the job's verdict."""

    def __init__(self, field: str, value: object, why: str) -> None:
        self.field = field
        self.error = ErrorInfo(
            type=INVALID_RECORD_ERROR,
            message=f"stored field {field!r} holds {shown(value)}: {why}",
        )
        super().__init__(self.error.message)

    def verdict(self) -> DeadLetter:
        return DeadLetter("invalid_record", self.error)


def shown(value: object) -> str:
    """`repr(value)` cut to `SHOWN_CHARS`: always printable ASCII-safe text (a lone surrogate
    is escaped by `repr`), whatever the value."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"an integer of {value.bit_length()} bits"  # repr refuses > 4300 digits
    try:
        text = repr(value)
    except Exception as exc:  # a foreign object's __repr__: still a verdict, never a raise
        text = f"<{type(value).__name__}: repr failed: {type(exc).__name__}>"
    if len(text) > SHOWN_CHARS:
        text = text[: SHOWN_CHARS - 1] + "…"
    return text


def integer(field: str, value: object, *, minimum: int = 0, maximum: int = MAX_STORED_INT) -> int:
    """An integer field: an `int` or its decimal text (ASCII digits, an optional `-`), within
    `minimum..maximum`."""
    if type(value) is int and minimum <= value <= maximum:  # what pikkugen writes: at once
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
        if not isinstance(text, str) or _DECIMAL.fullmatch(text) is None:
            raise InvalidRecord(field, value, "not an integer")
        number = int(text)
    if not minimum <= number <= maximum:
        raise InvalidRecord(field, value, f"outside {minimum}..{maximum}")
    return number


def optional_integer(
    field: str, value: object, *, minimum: int = 0, maximum: int = MAX_STORED_INT
) -> int | None:
    """`integer`, or None for a field that is not set."""
    return None if value is None else integer(field, value, minimum=minimum, maximum=maximum)


def text(field: str, value: object) -> str:
    """A text field: a `str` that is valid Unicode (a lone surrogate could not be written
    back)."""
    if not isinstance(value, str):
        raise InvalidRecord(field, value, "not text")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidRecord(field, value, "not valid Unicode") from None
    return value


def optional_text(field: str, value: object) -> str | None:
    """`text`, or None for a field that is not set."""
    return None if value is None else text(field, value)


def one_of(field: str, value: object, choices: Collection[str]) -> str:
    """A field holding one of a fixed set of names (a job's state)."""
    if not isinstance(value, str) or value not in choices:
        raise InvalidRecord(field, value, f"not one of {', '.join(sorted(choices))}")
    return value


def json_value(field: str, value: object) -> Any:
    """A field holding JSON text, read by the one strict reader (`payloads.decode_payload`)."""
    if not isinstance(value, str | bytes):
        raise InvalidRecord(field, value, "not JSON text")
    try:
        return decode_payload(value)
    except UndecodablePayload as exc:
        raise InvalidRecord(field, value, exc.error.message) from None


def trace_context(field: str, value: object) -> dict[str, str] | None:
    """A stored trace context (`pikku_queue.tracing`): None, or the JSON text of an object of
    strings, as pikkugen writes it. What the strings say is the tracer's to judge: an invalid
    `traceparent` is ignored there, as W3C Trace Context asks."""
    if value is None:
        return None
    data = json_value(field, value)
    if not isinstance(data, Mapping) or not all(isinstance(v, str) for v in data.values()):
        raise InvalidRecord(field, value, "not a JSON object of strings")
    return dict(data)
