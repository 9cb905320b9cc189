"""What every run-time command (worker, enqueue, dlq, monitor) starts from: the project's
`[tool.pikkugen]` config, its generated registry, its backend.

They are found as `scan` finds them, so the commands serve exactly the queues the generator
found, with the options it validated, on the one backend the generated client opens. Every
refusal here is one `error:` line and exit code 2 (`fail`), never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pikku_queue import runner
from pikku_queue.adapters import DEFAULT_URL, URL_ENVIRONMENT_VARIABLE, resolve_url
from pikku_queue.backend import Backend
from pikku_queue.errors import PikkuQueueError
from pikku_queue.processor import Processor
from pikku_queue.redact import redact_text
from pikku_queue.registry import Registry

from pikkugen.config import Config, ConfigError, load_config

BackendOption = Annotated[
    str | None,
    typer.Option(
        "--backend",
        help=f"Backend URL (default: ${URL_ENVIRONMENT_VARIABLE}, \\[tool.pikkugen] backend, "
        f"then {DEFAULT_URL}).",
    ),
]


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print `error: message` on stderr; the exit to raise (`raise fail(...) from None`)."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def project_config(out: Path | None = None) -> Config:
    """The project's `[tool.pikkugen]` config (read upward from the current folder); `out`:
    the generated package's folder when `pikkugen scan --out` put it elsewhere."""
    try:
        return load_config(out=str(out) if out is not None else None)
    except ConfigError as exc:
        raise fail(exc.message) from None


def _queues_json() -> list[dict[str, Any]]:
    """The queues of the project's generated `schemas/queues.json` (none outside a project or
    before a scan): what shell completion offers, read without importing any code."""
    from pikkugen.config import find_pyproject

    if find_pyproject(Path.cwd()) is None:
        return []
    try:
        config = load_config()
        data = json.loads((config.out / "schemas" / "queues.json").read_text(encoding="utf-8"))
        return [q for q in data["queues"] if isinstance(q, dict) and isinstance(q.get("name"), str)]
    except (ConfigError, OSError, ValueError, KeyError, TypeError):
        return []


def complete_queue(incomplete: str) -> list[str]:
    """Shell completion of a QUEUE argument: the generated registry's queue names."""
    return [q["name"] for q in _queues_json() if q["name"].startswith(incomplete)]


def complete_dead_letter_queue(incomplete: str) -> list[str]:
    """Shell completion of `dlq`'s QUEUE: processors' queues and their dead-letter queues."""
    names = {q["name"] for q in _queues_json()}
    for queue in _queues_json():
        dlq = (queue.get("options") or {}).get("dead_letter_queue")
        if isinstance(dlq, str):
            names.add(dlq)
    return sorted(name for name in names if name.startswith(incomplete))


def complete_queue_list(incomplete: str) -> list[str]:
    """Shell completion of `--queues a,b`: the last name of the comma-separated list."""
    done, comma, last = incomplete.rpartition(",")
    taken = set(done.split(",")) if comma else set()
    return [done + comma + name for name in complete_queue(last) if name not in taken]


def import_roots(config: Config) -> list[Path]:
    """Folders that must be on sys.path to import the generated package and the processors."""
    from pikkugen.scanner.modules import import_root_for

    roots = [config.out.parents[config.out_package.count(".")]]
    for path in config.paths:
        roots.append(import_root_for(path / "__init__.py" if path.is_dir() else path))
    roots.append(config.root)
    unique: list[Path] = []
    for root in roots:
        if root not in unique:
            unique.append(root)
    return unique


def load_registry(config: Config, package: str | None = None) -> tuple[Registry, str | None]:
    """The generated REGISTRY and default backend URL of `package` (default: the configured
    `out` package), with the project's import roots on sys.path (the runtime's importer)."""
    for root in reversed(import_roots(config)):
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
    try:
        return runner.import_registry(package or config.out_package)
    except runner.StartError as exc:
        from pikkugen.config import find_pyproject, no_project_message

        if package is None and find_pyproject(Path.cwd()) is None:
            raise fail(no_project_message(Path.cwd())) from None
        raise fail(str(exc)) from None


def load_processors(registry: Registry, names: list[str]) -> list[Processor]:
    """Import the processors of `names`; an error in the user's modules is one line, exit 2."""
    try:
        return runner.load_processors(registry, names)
    except runner.StartError as exc:
        raise fail(str(exc)) from None


def backend_url(flag: str | None, config: Config, generated: str | None) -> str:
    """The backend URL by the one order (`pikku_queue.adapters.resolve_url`; the project's
    live `[tool.pikkugen] backend` before the registry's copy of it), a relative SQLite path
    anchored at the project root (whatever the current folder), so worker, enqueue, dlq and
    the generated client open one file."""
    from pikku_queue.project import anchor_url

    return anchor_url(resolve_url(flag, config.backend or generated), config.root)


T = TypeVar("T")


def on_backend(url: str, action: Callable[[Backend], Awaitable[T]]) -> T:
    """Open the backend, run `action` on it and close it again; a backend that cannot be
    reached (or refuses the password…) is one `error:` line and exit 2, not a traceback."""

    async def run() -> T:
        target = runner.open_backend(url)
        try:
            return await action(target)
        finally:
            await target.close()

    try:
        return asyncio.run(run())
    except PikkuQueueError as exc:
        raise fail(redact_text(str(exc), url)) from None
