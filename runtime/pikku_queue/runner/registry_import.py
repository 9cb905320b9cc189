"""Finding the generated registry by its package name (`--registry PKG`).

The runner is started with a dotted name, not a file, so the generated package has to be
importable from where the worker runs (the current folder, `PYTHONPATH`). Importing it may
import the user's modules, which may raise anything: every such failure becomes a
`StartError` naming the module, so the worker exits with one line before touching a job.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from pikku_queue.registry import Registry
from pikku_queue.runner.errors import StartError, described


def _import(name: str) -> ModuleType | None:
    """The module `name`, None when it (or a package above it) does not exist."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
            return None
        raise StartError(
            f"importing the generated registry {name!r} failed: {described(exc)}"
        ) from None
    except Exception as exc:  # it may import the user's modules: they may raise anything
        raise StartError(
            f"importing the generated registry {name!r} failed: {described(exc)}"
        ) from None


def import_registry(package: str) -> tuple[Registry, str | None]:
    """The generated `REGISTRY` and `BACKEND_URL` of `package` (the generated package, or its
    `registry` module). The folder holding it must be importable (cwd, `PYTHONPATH`)."""
    names = [package] if package.endswith(".registry") else [f"{package}.registry", package]
    found: ModuleType | None = None
    for name in names:
        module = _import(name)
        if module is None:
            continue
        found = found or module
        registry = getattr(module, "REGISTRY", None)
        if isinstance(registry, Registry):
            backend_url = getattr(module, "BACKEND_URL", None)
            return registry, backend_url if isinstance(backend_url, str) else None
    if found is not None:
        raise StartError(f"{found.__name__} has no REGISTRY; run `pikkugen scan` again")
    folder = _folder_holding(package.removesuffix(".registry"))
    if folder is not None:
        # Scanned, but under a folder that is not on the import path (the src layout).
        raise StartError(
            f"cannot import the generated registry {names[0]!r}: it is in {folder}, which is"
            f" not importable from here; run with PYTHONPATH={folder}, or install your project"
            " into this environment (`pip install -e .`)"
        )
    raise StartError(
        f"cannot import the generated registry {names[0]!r}; run `pikkugen scan`, and start "
        "the worker where that package can be imported (the current folder, or PYTHONPATH)"
    )


def _folder_holding(package: str) -> str | None:
    """The folder below the current one (`src`, one level) holding `package`'s registry.py,
    as a relative path; None when there is none."""
    relative = Path(*package.split(".")) / "registry.py"
    here = Path.cwd()
    try:
        children = sorted(p for p in here.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return None
    for child in children[:200]:
        if (child / relative).is_file():
            return child.name
    return None
