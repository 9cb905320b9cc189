"""Which files are scanned: walk the paths, apply excludes, read bytes, pre-filter.

A substring test on the raw bytes is ~1000× cheaper than a parse (measured: ~89,000 files/s against ~96 for libcst), so every file
is read but only those whose bytes could hold a declaration are parsed. Exclude patterns
without a `/` match any file or folder name (like .gitignore); patterns with a `/` match the
path relative to the root (fnmatch, `*` crosses folders).
"""

from __future__ import annotations

import errno
import os
import stat
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
        elif os.path.exists(start):  # a FIFO, a socket, a device given by name
            problems.append(
                diagnostic(
                    "PK008",
                    f"{special_kind(os.stat(start).st_mode)}, not a file or folder; skipped",
                    path=relative(start, base),
                )
            )
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
    """The file's bytes, or why they were not read (too large, unreadable, not a file)."""
    found = read_regular(file.path, max_bytes)
    if isinstance(found, bytes):
        return found
    code, message, hint = found
    return diagnostic(code, message, path=file.rel, hint=hint)


#: Why a path was not read: (code, message, hint).
Unread = tuple[str, str, str | None]

_SPECIAL_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def special_kind(mode: int) -> str:
    """What a file that is not a regular file is, in words (`a FIFO`, `a socket`, ...)."""
    return next((what for test, what in _SPECIAL_KINDS if test(mode)), "not a regular file")


def read_regular(path: Path, max_bytes: int) -> bytes | Unread:
    """The bytes of a regular file of at most `max_bytes`, else why not. Opened without
    blocking: a FIFO named `*.py` would otherwise block the open (and the scan) until a writer
    came, and a device would be read for ever; either is skipped as not a regular file (PK008)
    after one `fstat`, which a plain file costs anyway."""
    try:
        fd = os.open(path, os.O_RDONLY | _NONBLOCK | _CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a socket (or a FIFO on some systems): no file to read
            return _special(_mode(path))
        return "PK004", f"cannot read file: {exc.strerror or exc}", None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return _special(info.st_mode)
        size = info.st_size
        with open(fd, "rb", closefd=False) as handle:
            data = handle.read(max_bytes + 1) if size <= max_bytes else b""
    except OSError as exc:
        return "PK004", f"cannot read file: {exc.strerror or exc}", None
    finally:
        os.close(fd)
    size = max(size, len(data))
    if size > max_bytes:
        return (
            "PK003",
            f"file is {size} bytes, more than max_file_bytes ({max_bytes}); skipped",
            "a processor module this large is unusual; if it is one, raise "
            "`max_file_bytes` in [tool.pikkugen]",
        )
    return data


_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def _mode(path: Path) -> int:
    try:
        return os.stat(path).st_mode
    except OSError:
        return 0


def _special(mode: int) -> Unread:
    return (
        "PK008",
        f"{special_kind(mode)}, not a regular file; skipped without reading it",
        "a module is a regular file: rename or exclude this one",
    )
