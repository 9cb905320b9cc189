"""Which files are scanned: walk the paths, apply excludes, read bytes, pre-filter.

A substring test on the raw bytes is ~1000× cheaper than a parse (RESEARCH.md), so every file
is read but only those whose bytes could hold a declaration are parsed. Exclude patterns
without a `/` match any file or folder name (like .gitignore); patterns with a `/` match the
path relative to the root (fnmatch, `*` crosses folders).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from pikkugen.model import Diagnostic
from pikkugen.scanner.codes import diagnostic
from pikkugen.scanner.modules import module_name_for

_SKIPPED_DIRS = frozenset({"__pycache__", "node_modules", "site-packages"})


@dataclass(frozen=True)
class SourceFile:
    path: Path  # absolute
    rel: str  # relative to the root, posix
    module: str
    is_package: bool  # an __init__.py


def relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return Path(os.path.relpath(path, root)).as_posix()


def _excluded(rel: str, name: str, patterns: Sequence[str]) -> bool:
    for pattern in patterns:
        if "/" in pattern.rstrip("/"):
            if fnmatchcase(rel, pattern.strip("/")):
                return True
        elif fnmatchcase(name, pattern.rstrip("/")):
            return True
    return False


def discover(
    paths: Iterable[Path], root: Path, exclude: Sequence[str]
) -> tuple[list[SourceFile], list[Diagnostic]]:
    """Every `.py` file under `paths` (files given directly are taken as they are), sorted."""
    found: dict[Path, SourceFile] = {}
    problems: list[Diagnostic] = []
    for given in paths:
        start = given if given.is_absolute() else root / given
        start = Path(os.path.abspath(start))
        if start.is_file():
            _add(found, start, root)
        elif start.is_dir():
            for folder, dirs, files in os.walk(start):
                here = Path(folder)
                dirs[:] = sorted(
                    d
                    for d in dirs
                    if not d.startswith(".")
                    and d not in _SKIPPED_DIRS
                    and not _excluded(relative(here / d, root), d, exclude)
                )
                for name in sorted(files):
                    if name.endswith(".py") and not _excluded(
                        relative(here / name, root), name, exclude
                    ):
                        _add(found, here / name, root)
        else:
            problems.append(
                diagnostic(
                    "PK004",
                    "path does not exist or is not a file or folder",
                    path=relative(start, root),
                )
            )
    return sorted(found.values(), key=lambda f: f.rel), problems


def _add(found: dict[Path, SourceFile], path: Path, root: Path) -> None:
    if path not in found:
        found[path] = SourceFile(
            path=path,
            rel=relative(path, root),
            module=module_name_for(path),
            is_package=path.name == "__init__.py",
        )


def read(file: SourceFile, max_bytes: int) -> bytes | Diagnostic:
    """The file's bytes, or why they were not read (too large, unreadable)."""
    try:
        size = file.path.stat().st_size
        data = file.path.read_bytes() if size <= max_bytes else b""
    except OSError as exc:
        return diagnostic("PK004", f"cannot read file: {exc.strerror or exc}", path=file.rel)
    size = max(size, len(data))
    if size > max_bytes:
        return diagnostic(
            "PK003",
            f"file is {size} bytes, more than max_file_bytes ({max_bytes}); skipped",
            path=file.rel,
            hint="a processor module this large is unusual; raise max_file_bytes if it is one",
        )
    return data
