"""`client.py`: one typed enqueue function per queue (async and `_sync`), and `queue_job`
overloads keyed by `Literal` queue names, so `mypy --strict` rejects a wrong payload type or
an unknown queue name before anything runs.

Every name the module defines is listed in `RESERVED` or derived from a queue identifier
behind a prefix; a user top-level package that would shadow one of them is reported by
`client_name_clashes` rather than silently producing a broken module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pikkugen.emit.base import EmitInput, header, py_literal, render
from pikkugen.emit.imports import import_block, top_level
from pikkugen.emit.names import assign_identifiers
from pikkugen.model import Diagnostic, ProcessorDecl

RESERVED = frozenset(
    {
        "annotations",
        "Any",
        "Literal",
        "Never",
        "overload",
        "Backend",
        "JobHandle",
        "TypedQueue",
        "Repeat",
        "TypeAdapter",
        "REGISTRY",
        "queue_job",
        "queue_job_sync",
        "untyped_queue_job",
        "untyped_queue_job_sync",
    }
)


def user_modules(processors: Sequence[ProcessorDecl]) -> list[str]:
    return sorted({m for p in processors for ref in (p.input, p.output) for m in ref.modules})


def client_name_clashes(processors: Sequence[ProcessorDecl]) -> list[Diagnostic]:
    """A type module whose top-level name equals a name the client defines would be shadowed
    (or shadow it): report it where the processor that needs it is declared."""
    stems = assign_identifiers(p.name for p in processors)
    defined = set(RESERVED)
    for stem in stems.values():
        defined.update({f"enqueue_{stem}", f"enqueue_{stem}_sync", f"QUEUE_{stem.upper()}"})
    found: list[Diagnostic] = []
    for decl in processors:
        for module in sorted({m for ref in (decl.input, decl.output) for m in ref.modules}):
            if top_level(module) in defined:
                loc = decl.location
                found.append(
                    Diagnostic(
                        level="error",
                        code="PK501",
                        message=f"the type module {module!r} of queue {decl.name!r} has a "
                        f"top-level name that the generated client also defines",
                        hint="rename the package, or move the type to another module",
                        path=loc.path,
                        line=loc.line,
                        column=loc.column,
                    )
                )
    return found


def emit(data: EmitInput) -> dict[str, str]:
    processors = sorted(data.scan.processors, key=lambda p: p.name)
    stems = assign_identifiers(p.name for p in processors)
    queues: list[dict[str, Any]] = [
        {
            "name": py_literal(p.name),
            "stem": stems[p.name],
            "const": f"QUEUE_{stems[p.name].upper()}",
            "input": p.input.annotation,
            "output": p.output.annotation,
        }
        for p in processors
    ]
    typing_names = ["Any"]
    if len(queues) == 0:
        typing_names.append("Never")
    else:
        typing_names.append("Literal")
    if len(queues) > 1:
        typing_names.append("overload")
    has_queues = bool(queues)
    imports = import_block(
        stdlib_from=[f"from typing import {', '.join(typing_names)}"],
        third_party_from=[
            "from pikku_queue.backend import Backend",
            "from pikku_queue.client import JobHandle" + (", TypedQueue" if has_queues else ""),
            "from pikku_queue.client import queue_job as untyped_queue_job",
            "from pikku_queue.client import queue_job_sync as untyped_queue_job_sync",
            "from pikku_queue.options import Repeat",
            *(["from pydantic import TypeAdapter"] if has_queues else []),
        ],
        user_modules=user_modules(processors),
        relative_from=["from .registry import REGISTRY"] if has_queues else [],
    )
    exported = sorted(
        [q["const"] for q in queues]
        + [f"enqueue_{q['stem']}" for q in queues]
        + [f"enqueue_{q['stem']}_sync" for q in queues]
        + ["queue_job", "queue_job_sync"]
    )
    text = render(
        "client/client.py.j2",
        header=header(data.config.relative_paths()),
        imports=imports,
        queues=queues,
        exported=exported,
    )
    return {"client.py": text}
