"""Checks of `[tool.pikkugen]` values that need more than their own text, at generate time.

- `services = "pkg.mod:factory"`: the module is looked up under the scanned paths and the name
  among its top-level bindings, statically (CPython's parser, behind the scanner's guard; the
  module is never imported), so a misspelled factory is reported by `scan`, not at worker
  start (PK602 error with a did-you-mean; PK603 warning when the module is not under the
  scanned paths, so it cannot be checked).
- `backend = "..."` with a secret in it (a user-info password, a bare `secret@`, a query
  parameter such as `password`, `access_key`, `token`): it is baked into the generated
  registry, which users commit; PK604 warns and points to `$PIKKU_QUEUE_URL`. What counts as a
  secret is the runtime's one redaction rule (`pikku_queue.redact`).
"""

from __future__ import annotations

import ast
import re
import warnings
from pathlib import Path

from pikku_queue.adapters import URL_ENVIRONMENT_VARIABLE
from pikku_queue.redact import redact_url

from pikkugen.config import PYPROJECT, Config
from pikkugen.diagnostics import suggest
from pikkugen.model import Diagnostic, Level

SERVICES_NOT_FOUND = "PK602"
SERVICES_UNCHECKED = "PK603"
BACKEND_SECRET = "PK604"


def check_config(config: Config) -> list[Diagnostic]:
    return [*_services(config), *_backend(config)]


def _where(config: Config, key: str) -> tuple[str | None, int | None, int | None]:
    """pyproject.toml's line and column of `key = ...` in [tool.pikkugen], when it is there."""
    path = config.root / PYPROJECT
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None, None, None
    section = False
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("["):
            section = stripped.replace(" ", "") in ("[tool.pikkugen]",)
            continue
        match = re.match(rf"\s*{re.escape(key)}\s*=\s*", line)
        if section and match:
            return PYPROJECT, number, match.end() + 1
    return PYPROJECT, None, None


def _diagnostic(
    config: Config, key: str, level: Level, code: str, message: str, hint: str
) -> Diagnostic:
    path, line, column = _where(config, key)
    return Diagnostic(
        level=level, code=code, message=message, hint=hint, path=path, line=line, column=column
    )


# -- services -----------------------------------------------------------------------------


def _services(config: Config) -> list[Diagnostic]:
    if config.services is None:
        return []
    module, _, name = config.services.partition(":")
    roots = _import_roots(config)
    file = _module_file(module, roots)
    if file is None:
        shown = ", ".join(config.relative(r) for r in roots) or "."
        close = _close_module(module, roots)
        hint = f"did you mean {close + ':' + name!r}? " if close else ""
        return [
            _diagnostic(
                config,
                "services",
                "warning",
                SERVICES_UNCHECKED,
                f"services module `{module}` is not under the scanned paths ({shown}); "
                f"pikkugen cannot check that it defines `{name}`",
                hint + "the worker imports it at start; a module outside your tree is fine "
                "if it is installed",
            )
        ]
    names = _top_level_names(file, config.max_file_bytes)
    if names is None or name in names:
        return []  # unreadable (the scan reports it), a star import or __getattr__, or found
    close = suggest(name, sorted(names))
    return [
        _diagnostic(
            config,
            "services",
            "error",
            SERVICES_NOT_FOUND,
            f"services factory `{name}` is not defined at the top level of `{module}` "
            f"({config.relative(file)}); the worker would fail at start",
            (f"did you mean {module + ':' + close!r}? " if close else "")
            + "name a function (or other callable) defined or imported at module level",
        )
    ]


def _import_roots(config: Config) -> list[Path]:
    """The folders module names start from, for each scanned path (a package folder's root
    is above it, as the scanner names modules)."""
    from pikkugen.scanner import import_root_for

    roots: list[Path] = []
    for path in config.paths:
        folder = path if path.is_dir() else path.parent
        root = import_root_for(folder / "__probe__.py")
        if root not in roots:
            roots.append(root)
    return roots


def _module_file(module: str, roots: list[Path]) -> Path | None:
    parts = module.split(".")
    for root in roots:
        base = root.joinpath(*parts)
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def _close_module(module: str, roots: list[Path]) -> str | None:
    """A module of the same package whose name is close to the last part of `module`."""
    parent, _, last = module.rpartition(".")
    for root in roots:
        folder = root.joinpath(*parent.split(".")) if parent else root
        if not folder.is_dir():
            continue
        known = sorted(
            p.stem if p.suffix == ".py" else p.name
            for p in folder.iterdir()
            if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()
        )
        close = suggest(last, known)
        if close is not None:
            return f"{parent}.{close}" if parent else close
    return None


def _top_level_names(file: Path, max_bytes: int) -> set[str] | None:
    """Names bound at the top level of `file` (also inside top-level if/try blocks); None
    when that cannot be known: unreadable or not a regular file (read as the scanner reads,
    never blocking on a FIFO), refused by the scanner's guard, a star import or a module
    `__getattr__`."""
    from pikkugen.scanner.discovery import read_regular
    from pikkugen.scanner.parse import checked_text

    data = read_regular(file, max_bytes)
    if not isinstance(data, bytes):
        return None
    with warnings.catch_warnings():  # CPython's SyntaxWarnings are the user's business
        warnings.simplefilter("ignore")
        found = checked_text(data)
    if not isinstance(found, tuple):
        return None
    names: set[str] = set()
    pending: list[ast.stmt] = list(found[1].tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*":
                    return None
                names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.If | ast.Try | ast.TryStar | ast.With):
            for block in ("body", "orelse", "finalbody"):
                pending.extend(getattr(node, block, []))
            for handler in getattr(node, "handlers", []):
                pending.extend(handler.body)
    return None if "__getattr__" in names else names


# -- backend ------------------------------------------------------------------------------


def _backend(config: Config) -> list[Diagnostic]:
    url = config.backend
    if url is None or redact_url(url) == url:
        return []
    return [
        _diagnostic(
            config,
            "backend",
            "warning",
            BACKEND_SECRET,
            f"[tool.pikkugen] backend carries a secret ({redact_url(url)}); it is written "
            "into the generated registry, which is committed with your code",
            f"keep the secret out of pyproject.toml: set ${URL_ENVIRONMENT_VARIABLE} where the "
            "workers and producers run (it takes precedence over `backend`), and leave "
            "`backend` without the credentials, or drop it",
        )
    ]
