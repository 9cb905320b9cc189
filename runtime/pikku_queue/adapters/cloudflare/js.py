"""The few places where Python meets JavaScript in a Python Worker (Pyodide).

A Python dict handed to a JS binding stays a PyProxy, which Cloudflare cannot serialise, so a
batch of `sendBatch` entries goes through `pyodide.ffi.to_js` (dicts as plain JS objects).
Message bodies are never converted that way: `to_js` turns `None` into `undefined` (a key
that vanishes under `JSON.stringify`), a whole float into a JS number that reads back as an
int, and an int beyond 2**53 into a BigInt that `JSON.stringify` refuses. So bodies travel as
JSON text (`contentType: "text"`), written and read by `pikku_queue.payloads`.

Values coming back (a message's body, id, timestamp, attempts) may be anything a foreign
producer sent or the conversion made: `plain_json` reads a body as JSON data or raises
`Unreadable`, and `message_id` / `epoch_ms` / `attempts_of` read the fields by the one rule
for stored fields (`pikku_queue.fields`) or raise its `InvalidRecord`, so the consumer gives
that one message a verdict. Under CPython (tests, a local double) there is no `pyodide`, and
values pass through.
Keyword arguments of a call on a JS function become its trailing options object in Pyodide,
so `binding.send(text, contentType="text")` is `binding.send(text, {contentType: "text"})`.
"""

from __future__ import annotations

import datetime
import importlib
import math
from typing import Any

from pikku_queue.fields import MAX_STORED_INT, InvalidRecord, integer, shown, text


class Unreadable(ValueError):
    """A message body that is no JSON data (or that the conversion from JS cannot read)."""


def _pyodide() -> tuple[Any, Any] | None:
    try:  # `js` first: only Pyodide has it (PyPI's pyodide-py installs `pyodide.ffi` anywhere)
        js = importlib.import_module("js")
        ffi = importlib.import_module("pyodide.ffi")
    except ImportError:
        return None
    return ffi.to_js, js.Object.fromEntries


def to_js(value: Any) -> Any:
    """`value` as a JavaScript value (dicts as plain objects) in Pyodide; itself elsewhere."""
    bridge = _pyodide()
    if bridge is None:
        return value
    convert, from_entries = bridge
    return convert(value, dict_converter=from_entries)


def to_py(value: Any) -> Any:
    """A JsProxy as Python data (objects as dicts, arrays as lists, buffers as bytes); any
    other value as is. Raises `Unreadable` when the conversion itself fails."""
    convert = getattr(value, "to_py", None)
    if not callable(convert):  # no JsProxy: already Python (a str, an int from a BigInt…)
        return value
    try:
        to_bytes = getattr(value, "to_bytes", None)
        if callable(to_bytes):  # an ArrayBuffer or typed array: a `bytes` body
            return bytes(to_bytes())
        return convert()
    except Exception as exc:
        raise Unreadable(f"cannot convert {shown(value)}: {type(exc).__name__}: {exc}") from None


def plain_json(value: Any, depth: int = 0) -> Any:
    """`value` when it is JSON data (None, bool, int, finite float, str, lists and dicts with
    str keys); raises `Unreadable` naming the first value that is not (a JS Date, Map key,
    Set, `undefined` in a list, a NaN...)."""
    if depth > 500:
        raise Unreadable("nested deeper than 500 levels")
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Unreadable(f"{value!r} is not a JSON number")
        return value
    if isinstance(value, list | tuple):
        return [plain_json(item, depth + 1) for item in value]
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise Unreadable(f"object key {shown(key)} is not a string")
            out[key] = plain_json(item, depth + 1)
        return out
    if type(value).__name__ == "JsNull":  # Pyodide's `jsnull`
        return None
    raise Unreadable(f"{shown(value)} ({type(value).__name__}) is not JSON data")


def epoch_ms(timestamp: Any) -> int:
    """A message's `timestamp` (a JS Date, a datetime, or epoch ms) as epoch ms."""
    try:
        get_time = getattr(timestamp, "getTime", None)
        if callable(get_time):
            value = get_time()
        elif isinstance(timestamp, datetime.datetime):
            value = timestamp.timestamp() * 1000
        else:
            value = timestamp
    except Exception as exc:  # a Date proxy whose getTime throws, a datetime out of range
        raise InvalidRecord("timestamp", timestamp, f"{type(exc).__name__}: {exc}") from None
    if isinstance(value, float) and math.isfinite(value):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidRecord("timestamp", timestamp, "not a date")
    return integer("timestamp", value)


def attempts_of(attempts: Any) -> int:
    """A message's `attempts`: a whole number from 1 (Cloudflare counts from 1)."""
    return integer("attempts", attempts, minimum=1, maximum=MAX_STORED_INT)


def message_id(value: Any) -> str:
    """A message's `id`: non-empty text."""
    if text("id", value) == "":
        raise InvalidRecord("id", value, "empty")
    return str(value)
