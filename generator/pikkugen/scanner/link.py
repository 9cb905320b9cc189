"""Cross-module name resolution over the scanned tree, from the per-file summaries.

A name resolves to one or more `Target`s (several when a `try/except ImportError` binds it
twice; the first is the one in source order). Imports from modules inside the tree are
followed to where the name is defined, so re-exports are seen through; `pikku_queue` itself
is never descended into, even when it sits inside the tree, so its names stay canonical.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from dataclasses import dataclass

import pikku_queue

from pikkugen.scanner.discovery import SourceFile
from pikkugen.scanner.modules import absolute_module
from pikkugen.scanner.summary import Binding, ModuleSummary

RUNTIME_PACKAGE = "pikku_queue"
#: The runtime's names the scanner understands, wherever in pikku_queue they are imported from.
PIKKU_NAMES = frozenset(
    {
        "queue_processor",
        "add_queue_processor",
        "RetryOptions",
        "BatchOptions",
        "Repeat",
        "RateLimit",
        "Dedupe",
    }
)
_DECLARATIONS = frozenset({"queue_processor", "add_queue_processor"})
_BUILTINS = frozenset(dir(builtins))
#: What `from pikku_queue import *` binds (the runtime is ours, so its `__all__` is known).
_RUNTIME_EXPORTS = frozenset(pikku_queue.__all__) | PIKKU_NAMES


@dataclass(frozen=True)
class Target:
    """What a name refers to: a dotted name, and the module to import for it to evaluate."""

    qualname: str
    module: str | None  # None for builtins


def is_runtime(name: str) -> bool:
    return name == RUNTIME_PACKAGE or name.startswith(RUNTIME_PACKAGE + ".")


def pikku_kind(target: Target) -> str | None:
    """`queue_processor`, `RetryOptions`, ... when the target is one of the runtime's names."""
    if not target.qualname.startswith(RUNTIME_PACKAGE + "."):
        return None
    last = target.qualname.rsplit(".", 1)[1]
    return last if last in PIKKU_NAMES else None


class Tree:
    """The scanned modules by name; summaries are loaded on first use (lazily for modules the
    pre-filter skipped but another module imports a constant or a function from)."""

    def __init__(
        self, files: dict[str, SourceFile], load: Callable[[SourceFile], ModuleSummary]
    ) -> None:
        self.files = files
        self.summaries: dict[str, ModuleSummary] = {}
        self._load = load

    def has_module(self, name: str) -> bool:
        return name in self.files and not is_runtime(name)

    def summary(self, name: str) -> ModuleSummary | None:
        if not self.has_module(name):
            return None
        found = self.summaries.get(name)
        if found is None:
            found = self._load(self.files[name])
            self.summaries[name] = found
        return found

    # -- resolution -----------------------------------------------------------------------

    def resolve(self, module: str, parts: list[str]) -> list[Target]:
        """Targets of the dotted name `parts` as written at module level of `module`."""
        heads = self._head(module, parts[0])
        for part in parts[1:]:
            following: list[Target] = []
            for head in heads:
                if self.has_module(head.qualname):
                    following.extend(self.resolve_in(head.qualname, part))
                else:
                    following.append(Target(f"{head.qualname}.{part}", head.module))
            heads = _unique(following)
        return heads

    def _head(self, module: str, name: str) -> list[Target]:
        summary = self.summary(module)
        if summary is not None and name in summary["bindings"]:
            return self.resolve_in(module, name)
        if name in _BUILTINS:
            return [Target(name, None)]
        return self.resolve_in(module, name)

    def resolve_in(
        self, module: str, name: str, seen: frozenset[tuple[str, str]] = frozenset()
    ) -> list[Target]:
        """What `module.name` is: follows in-tree imports to the defining module."""
        summary = self.summary(module)
        if summary is None:
            return [Target(f"{module}.{name}", module)]
        key = (module, name)
        if key in seen:
            return []
        seen = seen | {key}
        bindings = summary["bindings"].get(name)
        if bindings:
            found: list[Target] = []
            for binding in bindings:
                found.extend(self._follow(module, name, binding, seen))
            return _unique(found)
        submodule = f"{module}.{name}"
        if self.has_module(submodule):
            return [Target(submodule, submodule)]
        found = []
        for star in summary["stars"]:
            source = self.absolute(module, star["level"], star["module"])
            if source is None:
                continue
            if is_runtime(source):
                if name in _RUNTIME_EXPORTS:
                    found.append(Target(f"{RUNTIME_PACKAGE}.{name}", RUNTIME_PACKAGE))
            elif self.summary(source) is not None:
                found.extend(self.resolve_in(source, name, seen))
        return _unique(found)

    def _follow(
        self, module: str, name: str, binding: Binding, seen: frozenset[tuple[str, str]]
    ) -> list[Target]:
        kind = binding.get("kind")
        if kind == "local":
            return [Target(f"{module}.{name}", module)]
        if kind == "import":
            return [Target(binding.get("module", ""), binding.get("name", ""))]
        source = self.absolute(module, binding.get("level", 0), binding.get("module", ""))
        if source is None:
            return []
        imported = binding.get("name", "")
        if self.summary(source) is not None:
            followed = self.resolve_in(source, imported, seen)
            if followed:
                return followed
        return [Target(f"{source}.{imported}", source)]

    def absolute(self, module: str, level: int, target: str) -> str | None:
        file = self.files.get(module)
        is_package = file.is_package if file is not None else False
        return absolute_module(module, is_package, level, target or None)

    def constant_home(self, target: Target) -> tuple[str, str] | None:
        """(module, name) when `target` is a module-level constant of an in-tree module."""
        if "." not in target.qualname:
            return None
        module, name = target.qualname.rsplit(".", 1)
        summary = self.summary(module)
        if summary is None:
            return None
        bindings = summary["bindings"].get(name, [])
        if name in summary["constants"] and any(b.get("const") for b in bindings):
            return module, name
        return None

    def reexported_names(self, module: str) -> list[str]:
        """Names under which `module` makes a declaration function importable elsewhere.

        Only `queue_processor`/`add_queue_processor` matter here: a file that declares a
        processor must name one of them, while option classes and constants are read from
        modules that linking loads on demand. A module alias (`import pikku_queue as pq`) is
        reached as `pq.queue_processor`, so it is covered by the name `queue_processor`."""
        summary = self.summary(module)
        if summary is None:
            return []
        names: set[str] = set()
        for name in summary["bindings"]:
            for target in self.resolve_in(module, name):
                if pikku_kind(target) in _DECLARATIONS:
                    names.add(name)
                elif is_runtime(target.qualname):
                    names.add("queue_processor")
        return sorted(names)


def _unique(targets: list[Target]) -> list[Target]:
    return list(dict.fromkeys(targets))
