"""`__init__.py` of the generated package: it only makes the folder a package.

It deliberately imports nothing, so `import <out>.registry` in a worker does not pull in the
client and, through it, the user's type modules.
"""

from __future__ import annotations

from pikkugen.emit.base import EmitInput, header, render


def emit(data: EmitInput) -> dict[str, str]:
    text = render("package/__init__.py.j2", header=header(data.config.relative_paths()))
    return {"__init__.py": text}
