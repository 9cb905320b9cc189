"""A processor resolved for running: its function, options and type adapters.

Built from a declaration (`ProcessorSpec`) or a bare function, once per worker; the engine runs
it, the registry loads it, the client and the testing helpers read its adapters. Its own module
so that none of those needs the engine to name it.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter

from pikku_queue.declarations import ProcessorSpec
from pikku_queue.options import ProcessorOptions


def _payload_parameter(func: Callable[..., Any]) -> tuple[inspect.Parameter, bool]:
    """The payload parameter and whether a context parameter comes before it.

    Processors take `(ctx, data)` or just `(data)`.
    """
    params = [
        p
        for p in inspect.signature(func).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if len(params) == 2:
        return params[1], True
    if len(params) == 1:
        return params[0], False
    raise TypeError(
        f"processor {func.__qualname__} must take (ctx, data) or (data); "
        f"it takes {len(params)} positional parameters"
    )


def _unwrap_list(annotation: Any, what: str, func: Callable[..., Any]) -> Any:
    if typing.get_origin(annotation) in (list, Sequence) and typing.get_args(annotation):
        return typing.get_args(annotation)[0]
    raise TypeError(f"batch processor {func.__qualname__} must take and return lists ({what})")


@dataclass(frozen=True)
class Processor:
    """A processor resolved for running: its function, options and type adapters."""

    name: str
    func: Callable[..., Any]
    options: ProcessorOptions
    input_adapter: TypeAdapter[Any]
    output_adapter: TypeAdapter[Any]
    takes_context: bool
    is_async: bool

    @property
    def is_batch(self) -> bool:
        return self.options.batch is not None

    @classmethod
    def from_spec(cls, spec: ProcessorSpec) -> Processor:
        return cls.from_function(spec.name, spec.func, spec.options)

    @classmethod
    def from_function(
        cls, name: str, func: Callable[..., Any], options: ProcessorOptions | None = None
    ) -> Processor:
        options = options or ProcessorOptions()
        hints = typing.get_type_hints(func)
        param, takes_context = _payload_parameter(func)
        input_type = hints.get(param.name, Any)
        output_type = hints.get("return", Any)
        if options.batch is not None:
            input_type = _unwrap_list(input_type, "input", func)
            output_type = _unwrap_list(output_type, "output", func)
        return cls(
            name=name,
            func=func,
            options=options,
            input_adapter=TypeAdapter(input_type),
            output_adapter=TypeAdapter(output_type),
            takes_context=takes_context,
            is_async=inspect.iscoroutinefunction(func),
        )
