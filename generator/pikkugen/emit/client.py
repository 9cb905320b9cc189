"""`client.py`: one typed enqueue function per queue (async and `_sync`), and `queue_job`
overloads keyed by `Literal` queue names, so `mypy --strict` rejects a wrong payload type or
an unknown queue name before anything runs.

Every name the module defines is in `RESERVED` or derived from a queue identifier behind a
prefix; types are imported by their own names where that cannot clash (`localize`). A type
module imported whole whose top-level name would shadow a client name is reported by
`client_name_clashes` rather than silently producing a broken module.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pikkugen.emit.base import INDENT, EmitInput, header, py_literal, render
from pikkugen.emit.imports import ImportSet, render_imports, top_level
from pikkugen.emit.layout import LINE_LENGTH, fit
from pikkugen.emit.localize import Localized, localize
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
        "RepeatDict",
        "Dedupe",
        "TypeAdapter",
        "REGISTRY",
        "BACKEND_URL",
        "PROJECT_ROOT",
        "queue_job",
        "queue_job_sync",
        "untyped_queue_job",
        "untyped_queue_job_sync",
    }
)


@dataclass(frozen=True)
class _Plan:
    processors: list[ProcessorDecl]
    stems: dict[str, str]
    typing_names: tuple[str, ...]
    defined: frozenset[str]
    types: Localized


def _plan(processors: Sequence[ProcessorDecl]) -> _Plan:
    ordered = sorted(processors, key=lambda p: p.name)
    stems = assign_identifiers(p.name for p in ordered)
    typing_names = ["Any", "Never" if not ordered else "Literal"]
    if len(ordered) > 1:
        typing_names.append("overload")
    defined = set(RESERVED)
    for stem in stems.values():
        defined.update({f"enqueue_{stem}", f"enqueue_{stem}_sync", f"QUEUE_{stem.upper()}"})
    types = localize(
        [ref for p in ordered for ref in (p.input, p.output)],
        reserved=defined,
        shared={("typing", name): name for name in typing_names},
    )
    if len(ordered) == 1 and not _uses_any(types, ordered[0]):
        typing_names.remove("Any")  # the one queue's signatures are typed: `Any` would be F401
    return _Plan(ordered, stems, tuple(typing_names), frozenset(defined), types)


def _uses_any(types: Localized, decl: ProcessorDecl) -> bool:
    """Whether the processor's localized types name `typing.Any` (reserved, so `Any` is it)."""
    for ref in (decl.input, decl.output):
        tree = ast.parse(types.annotation(ref), mode="eval")
        if any(isinstance(n, ast.Name) and n.id == "Any" for n in ast.walk(tree)):
            return True
    return False


def client_name_clashes(processors: Sequence[ProcessorDecl]) -> list[Diagnostic]:
    """A type module imported whole whose top-level name equals a name the client defines
    would be shadowed (or shadow it): report it where the processor that needs it is."""
    plan = _plan(processors)
    whole = set(plan.types.modules)
    found: list[Diagnostic] = []
    for decl in plan.processors:
        modules = {m for ref in (decl.input, decl.output) for m in ref.modules} & whole
        for module in sorted(modules):
            if top_level(module) in plan.defined:
                found.append(
                    Diagnostic.at(
                        decl.location,
                        "error",
                        "PK501",
                        f"the type module {module!r} of queue {decl.name!r} has a "
                        f"top-level name that the generated client also defines",
                        hint="rename the package, or move the type to another module",
                    )
                )
    return found


def _queue(name: str, stem: str, types: Localized, decl: ProcessorDecl) -> dict[str, Any]:
    """What the template needs for one queue, every type expression already laid out for
    the place it goes (`fit`: long annotations and queue names break as ruff breaks them)."""
    into, out = types.annotation(decl.input), types.annotation(decl.output)
    returns = f"JobHandle[{out}]"
    return {
        "name": name,
        "stem": stem,
        "const": f"QUEUE_{stem.upper()}",
        "queue_in": fit(into, indent=1, before=4, after=1),
        "queue_out": fit(out, indent=1, before=4, after=1),
        "adapter_in": fit(f"TypeAdapter({into})", indent=1, before=4, after=1),
        "adapter_out": fit(f"TypeAdapter({out})", indent=1, before=4, after=1),
        "options": fit(f"REGISTRY.get({name})", indent=1, before=4, after=9) + ".options",
        "param": fit(into, indent=1, before=10, after=1),
        "literal": fit(f"Literal[{name}]", indent=1, before=11, after=1),
        "returns": fit(returns, indent=0, before=5, after=1),
        "returns_stub": fit(returns, indent=0, before=5, after=5),
        # ruff wraps `return <call>(` in parentheses when only that makes its first line fit
        "wrap_async": _paren_helps(f"await QUEUE_{stem.upper()}.enqueue("),
        "wrap_sync": _paren_helps(f"QUEUE_{stem.upper()}.enqueue_sync("),
    }


def _paren_helps(head: str) -> bool:
    return len("    return ") + len(head) > LINE_LENGTH >= 2 * len(INDENT) + len(head)


def emit(data: EmitInput) -> dict[str, str]:
    plan = _plan(data.scan.processors)
    queues = [
        _queue(py_literal(p.name), plan.stems[p.name], plan.types, p) for p in plan.processors
    ]
    imports = ImportSet()
    imports.add("typing", *plan.typing_names)
    imports.add("pikku_queue.backend", "Backend")
    imports.add("pikku_queue.client", "JobHandle", *(["TypedQueue"] if queues else []))
    imports.aliased.update(
        {
            ("pikku_queue.client", "queue_job", "untyped_queue_job"),
            ("pikku_queue.client", "queue_job_sync", "untyped_queue_job_sync"),
        }
    )
    imports.add("pikku_queue.options", "Dedupe", "Repeat", "RepeatDict")
    if queues:
        imports.add("pydantic", "TypeAdapter")
        imports.relative.append("from .registry import BACKEND_URL, PROJECT_ROOT, REGISTRY")
    plan.types.add_to(imports)
    first_party = {top_level(p.module) for p in plan.processors}
    first_party.add(top_level(data.config.out_package))
    exported = sorted(
        [q["const"] for q in queues]
        + [f"enqueue_{q['stem']}" for q in queues]
        + [f"enqueue_{q['stem']}_sync" for q in queues]
        + ["queue_job", "queue_job_sync"]
    )
    text = render(
        "client/client.py.j2",
        header=header(data.config.relative_paths()),
        imports=render_imports(imports, first_party=first_party),
        queues=queues,
        exported=exported,
    )
    return {"client.py": text}
