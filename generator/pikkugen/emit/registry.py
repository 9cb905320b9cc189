"""`registry.py`: queue name -> processor import path and normalised options, as data.

Workers import this module and load processors from it; it imports no user code itself
(`QueueEntry.load` imports a processor only when a worker asks for it), so listing queues or
reading options stays cheap and free of side effects.
"""

from __future__ import annotations

from typing import Any

from pikkugen.emit.base import EmitInput, header, py_literal, render

#: Nesting level of an option dict's opening line inside `REGISTRY = Registry([QueueEntry(`.
_OPTIONS_INDENT = 4


def emit(data: EmitInput) -> dict[str, str]:
    processors = sorted(data.scan.processors, key=lambda p: p.name)
    entries: list[dict[str, Any]] = [
        {
            "name": py_literal(p.name),
            "function": py_literal(p.function),
            "options": py_literal(p.options.model_dump(mode="json"), _OPTIONS_INDENT),
            "input": py_literal(p.input.annotation),
            "output": py_literal(p.output.annotation),
        }
        for p in processors
    ]
    config = data.config
    text = render(
        "registry/registry.py.j2",
        header=header(config.relative_paths()),
        entries=entries,
        services=py_literal(config.services),
        backend=py_literal(config.backend),
    )
    return {"registry.py": text}
