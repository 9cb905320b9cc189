"""Per-runtime generator plugins: one package per runtime, bringing its emitters, its
generate-time checks and the name of its templates folder.

A package `pikkugen.runtimes.<name>` defines `PLUGIN = RuntimePlugin(...)`; `PLUGINS` below
is the one registry (a line per runtime). Adding a runtime is that package, its templates
folder, one line here, and, on the runtime side, one adapter package and one capabilities
entry. Nothing else in the generator names a runtime: `emit.select` asks a plugin for its
emitters, `checks` for its problems. Runtimes without generated wiring (memory, sqlite) have
no plugin.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from pikkugen.emit.base import Emitter
from pikkugen.model import ProcessorDecl

#: What a generate-time problem is; `checks` maps each to its diagnostic code.
ProblemKind = Literal["unsupported", "out_of_range", "inexpressible"]
#: (kind, message, what to do instead) for one processor; `checks` adds "or drop the runtime".
Problem = tuple[ProblemKind, str, str]


def no_problems(decl: ProcessorDecl) -> Iterable[Problem]:
    """For a runtime whose limits are all in its capabilities entry."""
    return ()


@dataclass(frozen=True)
class RuntimePlugin:
    """What one runtime brings to the generator."""

    name: str
    #: (name, emit) in emission order; each returns {relative path: text}.
    emitters: tuple[tuple[str, Emitter], ...]
    #: What this runtime cannot do for one processor, beyond its capabilities entry (which
    #: `checks` holds every option against for every runtime alike).
    problems: Callable[[ProcessorDecl], Iterable[Problem]] = no_problems
    #: Its folder under `templates/`.
    templates: str | None = None


#: runtime → the module defining its `PLUGIN` (imported only when that runtime is configured).
PLUGINS: dict[str, str] = {
    "redis": "pikkugen.runtimes.redis",
    "sqs": "pikkugen.runtimes.sqs",
    "cloudflare": "pikkugen.runtimes.cloudflare",
}


class PluginError(Exception):
    """A registered plugin module that is missing or defines no `PLUGIN`."""

    def __init__(self, message: str, *, missing: bool) -> None:
        super().__init__(message)
        self.message = message
        self.missing = missing


def plugin(runtime: str) -> RuntimePlugin | None:
    """The plugin of `runtime`; None for a runtime without generated wiring. Raises
    PluginError when its module is absent or broken."""
    module_name = PLUGINS.get(runtime)
    if module_name is None:
        return None
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise PluginError(
            f"no plugin {module_name!r} is installed; the {runtime} runtime's wiring files "
            "are not generated",
            missing=True,
        ) from None
    found = getattr(module, "PLUGIN", None)
    if not isinstance(found, RuntimePlugin):
        raise PluginError(f"{module_name!r} defines no PLUGIN (a RuntimePlugin)", missing=False)
    return found
