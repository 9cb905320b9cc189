"""The `workers` module of Cloudflare's Python Workers, as far as a queue consumer meets it,
loaded into Pyodide by node/pyodide_harness.mjs in place of the runtime's own.

It follows workerd's `_workers.py` and `introspection.py`: a `WorkerEntrypoint` subclass is
built with `(ctx, env)`, its `env` wrapped so each binding is read once; workerd then calls a
handler through `wrapper_func`, which passes every argument through `python_from_rpc` (a JS
object with a plain `Object` constructor becomes a dict, a Date a datetime; a class instance
such as a MessageBatch or a ScheduledController stays a JsProxy) and awaits the result.
"""

from __future__ import annotations

import datetime
import inspect
from typing import Any


def _default_converter(value: Any, convert: Any, cache: Any) -> Any:
    if not hasattr(value, "constructor"):
        return value
    name = value.constructor.name
    if name == "Date":
        return datetime.datetime.fromtimestamp(value.getTime() / 1000)
    if name == "Error":
        return Exception(value.toString())
    if name == "Number":
        return value.valueOf()
    return value  # as workerd does: any other JS value passes through unchanged


def python_from_rpc(obj: Any) -> Any:
    if not hasattr(obj, "constructor"):
        return obj
    if obj.constructor.name == "TestController":
        return None
    return obj.to_py(default_converter=_default_converter)


class _EnvWrapper:
    def __init__(self, env: Any) -> None:
        self._env = env

    def __getattr__(self, name: str) -> Any:
        binding = getattr(self._env, name)
        setattr(self, name, binding)
        return binding


def _wrap_subclass(cls: type) -> None:
    original_init = cls.__init__

    def wrapped_init(self: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) > 1:
            args = (args[0], _EnvWrapper(args[1]), *args[2:])
        original_init(self, *args, **kwargs)

    cls.__init__ = wrapped_init  # type: ignore[misc]


class WorkerEntrypoint:
    """Base class used to define a Worker Entrypoint."""

    def __init__(self, ctx: Any, env: Any) -> None:
        self.ctx = ctx
        self.env = env

    def __init_subclass__(cls, **_kwargs: Any) -> None:
        _wrap_subclass(cls)


async def wrapper_func(relaxed: bool, inst: Any, prop: str, *args: Any, **kwargs: Any) -> Any:
    method = getattr(inst, prop)
    result = method(*[python_from_rpc(a) for a in args], **kwargs)
    if inspect.isawaitable(result):
        result = await result
    return result
