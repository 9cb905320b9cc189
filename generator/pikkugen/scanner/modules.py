"""Module names from file paths, the way Python's import system would see them.

The import root of a file is the first folder, walking up, that has no `__init__.py`: so a
`src/` layout gives `shop.email`, not `src.shop.email`. Namespace packages (folders without
`__init__.py`) therefore end the walk; that is the rule users can predict from the tree.
"""

from __future__ import annotations

import keyword
import os
import unicodedata
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=8192)
def _package_of(folder: str) -> tuple[str, ...]:
    """The package path of `folder` (empty when it is not a package). Strings, not Paths:
    this runs for every file of every scan."""
    parent = os.path.dirname(folder)
    if parent == folder or not os.path.isfile(os.path.join(folder, "__init__.py")):
        return ()
    return (*_package_of(parent), os.path.basename(folder))


def forget_packages() -> None:
    """Drop what is known about which folders are packages: a long-lived process (`watch`)
    calls this before each scan, so a new or deleted `__init__.py` is seen."""
    _package_of.cache_clear()


def import_root_for(path: Path) -> Path:
    """The `sys.path` entry under which the module in `path` is importable."""
    folder = os.path.dirname(os.path.abspath(path))
    for _ in _package_of(folder):
        folder = os.path.dirname(folder)
    return Path(folder)


def module_name_for(path: Path) -> str:
    """The dotted module name of the Python file `path` (`pkg/__init__.py` gives `pkg`)."""
    text = os.path.abspath(path)
    folder, name = os.path.split(text)
    package = _package_of(folder)
    parts = package if name == "__init__.py" else (*package, name.rsplit(".", 1)[0])
    return ".".join(parts) if parts else os.path.basename(folder)


def is_importable(module: str) -> bool:
    """Whether `import <module>` can name this module at all: identifiers, no keywords, each
    already in its NFKC form (Python normalises `import ｊobs` to `jobs` and then looks for
    `jobs.py`, so a file named `ｊobs.py` is never found)."""
    return all(
        part.isidentifier()
        and not keyword.iskeyword(part)
        and (part.isascii() or unicodedata.normalize("NFKC", part) == part)
        for part in module.split(".")
    )


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
