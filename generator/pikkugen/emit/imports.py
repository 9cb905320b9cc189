"""Import blocks for generated modules, laid out as ruff's isort would lay them out.

Sections: `__future__`, standard library, third party, the user's own modules (first party
in a normal project), then relative imports; in each, plain `import x` lines first, then
`from x import …` lines, both sorted. The user's modules are imported by their full dotted
name because annotations in the IR are fully qualified (`shop.models.Email`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable


def top_level(module: str) -> str:
    return module.partition(".")[0]


def is_stdlib(module: str) -> bool:
    return top_level(module) in sys.stdlib_module_names


def import_block(
    *,
    stdlib_from: Iterable[str] = (),
    third_party_from: Iterable[str] = (),
    user_modules: Iterable[str] = (),
    relative_from: Iterable[str] = (),
    future: bool = True,
) -> str:
    """The whole import block; `*_from` items are complete `from … import …` lines."""
    user = sorted(set(user_modules))
    sections = [
        ["from __future__ import annotations"] if future else [],
        [f"import {m}" for m in user if is_stdlib(m)] + sorted(stdlib_from),
        sorted(third_party_from),
        [f"import {m}" for m in user if not is_stdlib(m)],
        sorted(relative_from),
    ]
    return "\n\n".join("\n".join(lines) for lines in sections if lines) + "\n"
