"""Module names from file paths, the way Python's import system would see them.

The import root of a file is the first folder, walking up, that has no `__init__.py`: so a
`src/` layout gives `shop.email`, not `src.shop.email`. Namespace packages (folders without
`__init__.py`) therefore end the walk; that is the rule users can predict from the tree.
"""

from __future__ import annotations

import keyword
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=4096)
def _is_package_dir(folder: Path) -> bool:
    return (folder / "__init__.py").is_file()


def import_root_for(path: Path) -> Path:
    """The `sys.path` entry under which the module in `path` is importable."""
    folder = path.parent
    while _is_package_dir(folder) and folder.parent != folder:
        folder = folder.parent
    return folder


def module_name_for(path: Path) -> str:
    """The dotted module name of the Python file `path` (`pkg/__init__.py` gives `pkg`)."""
    parts: list[str] = [] if path.name == "__init__.py" else [path.stem]
    folder = path.parent
    while _is_package_dir(folder) and folder.parent != folder:
        parts.append(folder.name)
        folder = folder.parent
    parts.reverse()
    return ".".join(parts) if parts else path.parent.name


def is_importable(module: str) -> bool:
    """Whether `import <module>` can name this module at all (identifiers, no keywords)."""
    return all(part.isidentifier() and not keyword.iskeyword(part) for part in module.split("."))


def absolute_module(module: str, is_package: bool, level: int, target: str | None) -> str | None:
    """Resolve `from <level dots><target> import ...` written in `module`; None if it climbs
    above the top-level package."""
    if level == 0:
        return target
    base = module.split(".") if is_package else module.split(".")[:-1]
    climb = level - 1
    if climb >= len(base):
        return None
    base = base[: len(base) - climb] if climb else base
    if not base:
        return None  # Python: "attempted relative import with no known parent package"
    return ".".join([*base, target] if target else base)
