"""The few places where Python meets JavaScript in a Python Worker (Pyodide).

A Python dict handed to a JS binding stays a PyProxy, which Cloudflare cannot serialise, so
bodies go through `pyodide.ffi.to_js` (dicts as plain JS objects); values coming back (a
message's body, its timestamp) are JsProxies to convert. Under CPython (tests, a local double)
there is no `pyodide`, and values pass through unchanged. Keyword arguments of a call on a JS
function become its trailing options object in Pyodide, so `binding.send(body,
contentType="json")` is `binding.send(body, {contentType: "json"})` in JavaScript.
"""

from __future__ import annotations

import datetime
import importlib
from typing import Any


def _pyodide() -> tuple[Any, Any] | None:
    try:
        ffi = importlib.import_module("pyodide.ffi")
        js = importlib.import_module("js")
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
    """A JsProxy as Python data (objects as dicts, arrays as lists); anything else as is."""
    convert = getattr(value, "to_py", None)
    return convert() if callable(convert) else value


def epoch_ms(timestamp: Any) -> int:
    """A message's `timestamp` (a JS Date, a datetime, or epoch ms) as epoch ms."""
    get_time = getattr(timestamp, "getTime", None)
    if callable(get_time):
        return int(get_time())
    if isinstance(timestamp, datetime.datetime):
        return int(timestamp.timestamp() * 1000)
    if isinstance(timestamp, int | float):
        return int(timestamp)
    return 0
