"""The registry: queue name → processor function and options, as the generator wrote them.

Workers learn what to run from this table (built by the generated `registry.py`), never from
import side effects of the user's modules: the generator found the declarations statically, so
the registry stays correct even if a module is never imported by the app itself. Functions are
imported lazily, only for the queues a worker serves.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pikku_queue.errors import PikkuQueueError, UnknownQueueError
from pikku_queue.options import ProcessorOptions
from pikku_queue.processor import Processor
from pikku_queue.project import anchor_url, stale_sources
from pikku_queue.services import create_services, resolve_reference


def import_object(dotted: str) -> Any:
    """Import "pkg.mod.func" (or "pkg.mod:func"), trying the longest importable module."""
    if ":" in dotted:
        return resolve_reference(dotted)
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            target: Any = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError as exc:
            if exc.name is not None and not ".".join(parts[:cut]).startswith(exc.name):
                raise  # the module exists but imports something missing: a real error
            continue
        try:
            for attribute in parts[cut:]:
                target = getattr(target, attribute)
        except AttributeError:
            raise PikkuQueueError(f"cannot import {dotted!r}: no attribute {attribute!r}") from None
        return target
    raise PikkuQueueError(
        f"cannot import {dotted!r}: no module {parts[0]!r} on the import path; start the worker"
        " where your code can be imported (PYTHONPATH=src for a src layout, or install your"
        " project into this environment: `pip install -e .`)"
    )


@dataclass(frozen=True)
class QueueEntry:
    """One queue as the generator saw it."""

    name: str
    function: str  # "pkg.mod.func"
    options: ProcessorOptions
    input: str = ""  # the annotation of the payload type, for display
    output: str = ""

    def load(self) -> Processor:
        func: Callable[..., Any] = import_object(self.function)
        return Processor.from_function(self.name, func, self.options)


#: Every Registry built in this process (the generated registry module builds one):
#: `queue_job` on a name that no client and no registry knows is refused.
known_registries: list[Registry] = []


class Registry:
    """Every queue of a project, with its processor reference and options.

    `backend_url` is the project's configured backend (relative SQLite paths stay relative in
    the generated file), `root` the project root the generated module computed from its own
    location, `sources` the fingerprint of the files the declarations came from."""

    def __init__(
        self,
        entries: Iterable[QueueEntry],
        *,
        services: str | None = None,
        backend_url: str | None = None,
        root: Path | None = None,
        sources: Mapping[str, str] | None = None,
    ) -> None:
        self.entries: tuple[QueueEntry, ...] = tuple(entries)
        self.services = services
        self.backend_url = backend_url
        self.root = root
        self.sources: dict[str, str] = dict(sources or {})
        known_registries.append(self)
        self._by_name = {entry.name: entry for entry in self.entries}
        self._services_value: Any = None
        self._services_built = False

    def names(self) -> list[str]:
        return [entry.name for entry in self.entries]

    def get(self, name: str) -> QueueEntry:
        try:
            return self._by_name[name]
        except KeyError:
            known = ", ".join(self.names()) or "(none)"
            raise UnknownQueueError(
                f"no processor serves queue {name!r}; known: {known}"
                + did_you_mean(name, self.names())
                + " (a processor added since the last scan: run `pikkugen scan`)"
            ) from None

    def url(self, url: str) -> str:
        """`url` with a relative SQLite path anchored at this project's root."""
        return anchor_url(url, self.root)

    def stale_sources(self) -> list[str]:
        """Declaring files changed since this registry was generated (none without a root)."""
        return [] if self.root is None else stale_sources(self.root, self.sources)

    def load(self, names: Iterable[str] | None = None) -> list[Processor]:
        """Import and resolve the processors of `names` (all queues when None)."""
        chosen = self.names() if names is None else list(names)
        return [self.get(name).load() for name in chosen]

    def create_services(self) -> Any:
        """Build the services once (None without a factory). An async factory is run to
        completion here, so this cannot be called from inside an event loop: use
        `acreate_services` there."""
        if self._services_built:
            return self._services_value
        if self.services is not None:
            value = resolve_reference(self.services)()
            if inspect.isawaitable(value):
                try:
                    running = asyncio.get_running_loop()
                except RuntimeError:
                    running = None
                if running is None:  # outside the `except`: no spurious exception chain
                    value = asyncio.run(_wait(value))
                else:
                    if inspect.iscoroutine(value):
                        value.close()
                    raise PikkuQueueError(
                        "the services factory is async: use `await registry.acreate_services()`"
                    )
            self._services_value = value
        self._services_built = True
        return self._services_value

    async def acreate_services(self) -> Any:
        """`create_services` for callers already inside an event loop."""
        if not self._services_built:
            self._services_value = await create_services(self.services)
            self._services_built = True
        return self._services_value


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`; did you mean 'send-sms'?` when a known name is close, else ``."""
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


async def _wait(awaitable: Awaitable[Any]) -> Any:
    return await awaitable
