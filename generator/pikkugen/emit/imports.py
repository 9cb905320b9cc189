"""Import blocks for generated modules, laid out as ruff's isort lays them out by default.

Sections: `__future__`, standard library, third party, first party (the scanned project's
own packages), relative; in each, `import x` lines first, then `from x import …` lines, both
in ruff's natural, case-insensitive order, names ordered constants, classes, then the rest.
A `from` line that would pass 79 characters is exploded one name per line with a trailing
comma, which both ruff format and ruff's isort keep at any configured line length.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field

SINGLE_LINE_LIMIT = 79


def top_level(module: str) -> str:
    return module.partition(".")[0]


def is_stdlib(module: str) -> bool:
    return top_level(module) in sys.stdlib_module_names


def natural_key(text: str) -> tuple[list[str | int], str]:
    """`Item2` before `Item10`, case-insensitive first, then case-sensitive to break ties."""
    parts: list[str | int] = [
        int(chunk) if i % 2 else chunk.lower() for i, chunk in enumerate(re.split(r"(\d+)", text))
    ]
    return parts, text


def name_key(name: str) -> tuple[int, tuple[list[str | int], str]]:
    kind = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return kind, natural_key(name)


@dataclass
class ImportSet:
    plain: set[str] = field(default_factory=set)
    names: dict[str, set[str]] = field(default_factory=dict)
    #: `from module import name as alias`, each on its own line (ruff's default)
    aliased: set[tuple[str, str, str]] = field(default_factory=set)
    #: Complete relative import lines (`from .registry import REGISTRY`).
    relative: list[str] = field(default_factory=list)

    def add(self, module: str, *names: str) -> None:
        self.names.setdefault(module, set()).update(names)


def from_line(module: str, names: Iterable[str]) -> str:
    ordered = sorted(set(names), key=name_key)
    line = f"from {module} import {', '.join(ordered)}"
    if len(line) <= SINGLE_LINE_LIMIT:
        return line
    return f"from {module} import (\n" + "".join(f"    {n},\n" for n in ordered) + ")"


def render_imports(imports: ImportSet, *, first_party: Iterable[str], future: bool = True) -> str:
    """The whole import block, ending with a newline."""
    ours = set(first_party)

    def section(module: str) -> int:
        if is_stdlib(module):
            return 0
        return 2 if top_level(module) in ours else 1

    blocks: list[list[str]] = [[], [], []]
    for module in sorted(imports.plain, key=natural_key):
        blocks[section(module)].append(f"import {module}")
    for module in sorted({*imports.names, *(a[0] for a in imports.aliased)}, key=natural_key):
        if imports.names.get(module):
            blocks[section(module)].append(from_line(module, imports.names[module]))
        for _, name, alias in sorted(
            (a for a in imports.aliased if a[0] == module), key=lambda a: name_key(a[1])
        ):
            blocks[section(module)].append(f"from {module} import {name} as {alias}")
    sections = [
        ["from __future__ import annotations"] if future else [],
        *blocks,
        sorted(imports.relative),
    ]
    return "\n\n".join("\n".join(lines) for lines in sections if lines) + "\n"
