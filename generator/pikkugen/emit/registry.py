"""`registry.py`: queue name -> processor import path and normalised options, as data.

Workers import this module and load processors from it; it imports no user code itself
(`QueueEntry.load` imports a processor only when a worker asks for it), so listing queues or
reading options stays cheap and free of side effects.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pikku_queue.project import fingerprint

from pikkugen.emit.base import EmitInput, header, py_literal, render

#: Nesting level of an option dict's opening line inside `REGISTRY = Registry([QueueEntry(`.
_OPTIONS_INDENT = 4


def emit(data: EmitInput) -> dict[str, str]:
    return emit_anchored(data, data.config.root)


def emit_anchored(data: EmitInput, root: Path) -> dict[str, str]:
    """`registry.py` whose PROJECT_ROOT is `root` (the standalone client anchors at the worker
    project's root, not at the folder it is generated from)."""
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
    sources = fingerprint(config.root, {p.location.path for p in processors if p.function})
    text = render(
        "registry/registry.py.j2",
        header=header(config.relative_paths()),
        entries=entries,
        services=py_literal(config.services),
        backend=py_literal(config.backend),
        hop=py_literal(root_hop(root, config.out)),
        sources=py_literal(sources),
    )
    return {"registry.py": text}


def root_hop(root: Path, out: Path) -> str:
    """The project root seen from the generated package, posix and relative (`../..`): the
    generated module turns it into an absolute path at import, from its own `__file__`, so no
    path of the generating machine is written into files users commit."""
    try:
        return Path(os.path.relpath(root, out)).as_posix()
    except ValueError:  # another drive (Windows): no relative form; the folder itself
        return "."
