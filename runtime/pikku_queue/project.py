"""Where the project is, seen from running code: the anchor of relative SQLite paths and the
fingerprint of the sources a generated registry was made from.

A relative `sqlite:///.pikku/app.db` means "in the project", not "in whatever folder the
process happens to start in": the CLI anchors it at the folder of the `pyproject.toml` holding
`[tool.pikkugen]`, a generated registry or client at the project root it computes from its own
`__file__` and the relative hop the generator wrote (never an absolute path of the machine that
generated it: users commit those files). So the worker, `enqueue`, `dlq` and an imported client
open the same file from any current folder.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

from pikku_queue.errors import BackendError
from pikku_queue.redact import redact_url


def path_from_url(url: str) -> str:
    """`sqlite:///rel/path.db` → `rel/path.db`; `sqlite:////abs/path.db` → `/abs/path.db`.
    Here, not in the SQLite adapter, because anchoring a relative path needs it without
    opening (or importing) a backend."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite":
        raise BackendError(f"not a sqlite:// URL: {redact_url(url)!r}")
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if parts.netloc:
        path = parts.netloc + "/" + path
    if not path:
        raise BackendError(f"{redact_url(url)!r} names no file; use sqlite:///path/to/queue.db")
    return path


#: Characters of the sha256 hex digest kept per source file.
DIGEST_CHARS = 16


def project_root(module_file: str, hop: str) -> Path:
    """The project root of a generated module: `hop` (posix, e.g. `../..`) from its folder."""
    return (Path(module_file).resolve().parent / hop).resolve()


def anchor_url(url: str, root: str | os.PathLike[str] | None) -> str:
    """`url` with a relative `sqlite:///` path made absolute under `root`; every other URL
    (absolute SQLite paths, Redis, SQS, memory) unchanged, and unchanged when `root` is None."""
    if root is None or not url.startswith("sqlite:"):  # urlsplit raises on a bad IPv6 host
        return url
    parts = urlsplit(url)
    path = path_from_url(url)
    if os.path.isabs(path) or path.startswith(":memory:"):
        return url
    absolute = Path(os.path.normpath(Path(root).resolve() / path)).as_posix()
    return f"sqlite:///{absolute}" + (f"?{parts.query}" if parts.query else "")


def digest(data: bytes) -> str:
    """The fingerprint of one source file's bytes, line endings normalised (a checkout with
    CRLF, git's autocrlf on Windows, has the same registry as one with LF)."""
    return hashlib.sha256(data.replace(b"\r\n", b"\n")).hexdigest()[:DIGEST_CHARS]


def fingerprint(root: Path, files: Iterable[str]) -> dict[str, str]:
    """Project-relative posix path -> digest of its current bytes (an unreadable file is "")."""
    found: dict[str, str] = {}
    for relative in sorted(set(files)):
        try:
            found[relative] = digest((root / relative).read_bytes())
        except OSError:
            found[relative] = ""
    return found


def stale_sources(root: Path, sources: Mapping[str, str]) -> list[str]:
    """The files of `sources` whose bytes changed (or that are gone) since the registry was
    generated: one read and one hash per declaring file, cheap enough for every worker start."""
    current = fingerprint(root, sources)
    return [path for path, value in sorted(sources.items()) if current.get(path) != value]


def stale_message(stale: list[str]) -> str:
    """`registry is older than src/app/jobs.py: run pikkugen scan`."""
    more = f" (and {len(stale) - 1} more)" if len(stale) > 1 else ""
    return f"registry is older than {stale[0]}{more}: run `pikkugen scan`"
