"""Which files are scanned: walk the paths, apply excludes, read bytes, pre-filter.

A substring test on the raw bytes is ~1000× cheaper than a parse (measured: ~89,000 files/s against ~96 for libcst), so every file
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


def relative(path: Path | str, root: Path | str) -> str:
    """`path` relative to `root`, posix (string work: this runs once per file per scan)."""
    text, base = os.fspath(path), os.fspath(root).rstrip(os.sep)
    if text.startswith(base + os.sep):
        rel = text[len(base) + 1 :]
    elif text == base:
        rel = "."
    else:
        rel = os.path.relpath(text, base)
    return rel.replace(os.sep, "/") if os.sep != "/" else rel


def _excluded(
    root: str, folder: str, name: str, patterns: Sequence[str], *, is_dir: bool = False
) -> bool:
    for pattern in patterns:
        if "/" in pattern.rstrip("/"):
            rel = relative(os.path.join(folder, name), root)
            pattern = pattern.strip("/")
            # a folder is pruned when everything below it matches (`out/*` prunes `out`)
            if fnmatchcase(rel, pattern) or (is_dir and fnmatchcase(rel + "/", pattern)):
                return True
        elif fnmatchcase(name, pattern.rstrip("/")):
            return True
    return False


def discover(
    paths: Iterable[Path], root: Path, exclude: Sequence[str]
) -> tuple[list[SourceFile], list[Diagnostic]]:
    """Every `.py` file under `paths` (files given directly are taken as they are), sorted."""
    found: dict[str, SourceFile] = {}
    problems: list[Diagnostic] = []
    base = os.fspath(root)
    for given in paths:
        start = os.path.abspath(given if given.is_absolute() else root / given)
        if os.path.isfile(start):
            _add(found, start, base)
        elif os.path.isdir(start):
            for folder, dirs, files in os.walk(start):
                dirs[:] = sorted(
                    d
                    for d in dirs
                    if not d.startswith(".")
                    and d not in _SKIPPED_DIRS
                    and not _excluded(base, folder, d, exclude, is_dir=True)
                )
                for name in files:
                    if name.endswith(".py") and not _excluded(base, folder, name, exclude):
                        _add(found, os.path.join(folder, name), base)
        else:
            problems.append(
                diagnostic(
                    "PK004",
                    "path does not exist or is not a file or folder",
                    path=relative(start, base),
                )
            )
    return sorted(found.values(), key=lambda f: f.rel), problems


def _add(found: dict[str, SourceFile], path: str, root: str) -> None:
    if path not in found:
        file = Path(path)
        found[path] = SourceFile(
            path=file,
            rel=relative(path, root),
            module=module_name_for(file),
            is_package=file.name == "__init__.py",
        )


def read(file: SourceFile, max_bytes: int) -> bytes | Diagnostic:
    """The file's bytes, or why they were not read (too large, unreadable)."""
    try:
        with open(file.path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            data = handle.read(max_bytes + 1) if size <= max_bytes else b""
    except OSError as exc:
        return diagnostic("PK004", f"cannot read file: {exc.strerror or exc}", path=file.rel)
    size = max(size, len(data))
    if size > max_bytes:
        return diagnostic(
            "PK003",
            f"file is {size} bytes, more than max_file_bytes ({max_bytes}); skipped",
            path=file.rel,
            hint="a processor module this large is unusual; if it is one, raise "
            "`max_file_bytes` in [tool.pikkugen]",
        )
    return data
