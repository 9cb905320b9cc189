"""Short local names for the types in generated annotations.

The IR's annotations are fully qualified (`shop.models.Email`). The client imports each type
by its own name (`from shop.models import Email`) so signatures read like hand-written code
and stay short. A name that would clash (two modules' `Item`, a builtin, a name the client
defines) falls back to importing its module and keeping the dotted path, which is always
correct; the choice is made in sorted order, so it is deterministic.
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pikkugen.emit.imports import ImportSet, natural_key, top_level
from pikkugen.emit.layout import flat
from pikkugen.model import TypeRef

Pair = tuple[str, str]  # (module, name)


@dataclass(frozen=True)
class Localized:
    #: (annotation, modules) of a TypeRef -> the annotation with local names
    annotations: dict[tuple[str, tuple[str, ...]], str]
    #: (module, name) -> local name, for every type imported by name
    names: dict[Pair, str]
    #: modules imported whole because a name of theirs could not be imported alone
    modules: tuple[str, ...]

    def annotation(self, ref: TypeRef) -> str:
        return self.annotations[(ref.annotation, ref.modules)]

    def add_to(self, imports: ImportSet) -> None:
        for (module, name), local in self.names.items():
            if local == name:
                imports.add(module, name)
        imports.plain.update(self.modules)


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _references(ref: TypeRef) -> list[Pair]:
    """Every `module.name` of `ref.modules` the annotation uses, outermost match only."""
    tree = _parse(ref)
    if tree is None:
        return []
    found: list[Pair] = []

    def visit(node: ast.AST) -> None:
        pair = _pair(node, ref.modules)
        if pair is not None:
            # outermost match only: `shop.models.Email` is not also `shop` + `models`
            found.append(pair)
            return
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _parse(ref: TypeRef) -> ast.expr | None:
    try:
        return ast.parse(ref.annotation, mode="eval").body
    except SyntaxError:
        return None


def _pair(node: ast.AST, modules: tuple[str, ...]) -> Pair | None:
    if isinstance(node, ast.Attribute):
        module = _dotted(node.value)
        if module is not None and module in modules:
            return module, node.attr
    return None


def _rebuild(node: ast.expr, modules: tuple[str, ...], names: Mapping[Pair, str]) -> str:
    """The annotation's text again, with local names, strings quoted as `ruff format` quotes
    them (the IR holds `repr()`s). Rebuilt from the tree, never spliced by offsets: CPython's
    offsets count UTF-8 bytes, so a non-ASCII literal would shift every later splice."""

    class Rename(ast.NodeTransformer):
        def visit_Attribute(self, node: ast.Attribute) -> ast.expr:
            pair = _pair(node, modules)
            if pair is not None and pair in names:
                return ast.Name(id=names[pair])
            return node if pair is not None else self.generic_visit(node)  # type: ignore[return-value]

    return flat(Rename().visit(node))


def localize(
    refs: Iterable[TypeRef], *, reserved: Iterable[str], shared: Mapping[Pair, str] | None = None
) -> Localized:
    """Choose local names for every type the annotations in `refs` use.

    `reserved` are names the generated module defines or imports for itself; `shared` maps a
    pair the module imports anyway (`typing.Any`) to its local name.
    """
    shared = shared or {}
    refs = list(dict.fromkeys(refs))
    pairs = sorted(
        {p for ref in refs for p in _references(ref)},
        key=lambda p: (natural_key(p[1]), natural_key(p[0])),
    )
    taken = set(reserved) | set(dir(builtins))
    by_name: dict[str, list[Pair]] = {}
    for pair in pairs:
        if pair not in shared:
            by_name.setdefault(pair[1], []).append(pair)
    names: dict[Pair, str] = {}
    for pair in pairs:
        if pair in shared:
            names[pair] = shared[pair]
        elif pair[1] not in taken and len(by_name[pair[1]]) == 1:
            names[pair] = pair[1]
    # A module imported whole binds its top-level name: no local name may be that name.
    while True:
        tops = {top_level(p[0]) for p in pairs if p not in names}
        clashing = [p for p, local in names.items() if p not in shared and local in tops]
        if not clashing:
            break
        for pair in clashing:
            del names[pair]
    annotations: dict[tuple[str, tuple[str, ...]], str] = {}
    for ref in refs:
        tree = _parse(ref)
        text = ref.annotation if tree is None else _rebuild(tree, ref.modules, names)
        annotations[(ref.annotation, ref.modules)] = text
    whole = {p[0] for p in pairs if p not in names}
    return Localized(
        annotations=annotations,
        names={p: n for p, n in names.items() if p not in shared},
        modules=tuple(sorted(whole, key=natural_key)),
    )
