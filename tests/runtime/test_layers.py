"""The runtime's layers: every import inside `pikku_queue` points down (or sideways within a
layer) and the import graph has no cycle, so no function-local import can be hiding one.

The layer order is written once, here (lowest first). A module belongs to the first layer
with a pattern that matches it (`*` matches one dotted name). Imports under
`if TYPE_CHECKING:` are annotations only and do not count; imports of optional third-party
dependencies are not `pikku_queue` modules and are not checked here.
"""

from __future__ import annotations

import ast
import fnmatch
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

RUNTIME = Path(__file__).resolve().parents[2] / "runtime"
PACKAGE = RUNTIME / "pikku_queue"

LAYERS: list[tuple[str, list[str]]] = [
    (
        "leaf definitions",
        [
            "pikku_queue.errors",
            "pikku_queue.clock",
            "pikku_queue.cron",
            "pikku_queue.redact",
            "pikku_queue.install",
            "pikku_queue.calls",
            "pikku_queue.lazy",
            "pikku_queue.retention",
            "pikku_queue.services",
            "pikku_queue.project",
            "pikku_queue.options",
            "pikku_queue.context",
            "pikku_queue.events",
            "pikku_queue.capabilities",
        ],
    ),
    (
        "backend declarations: each adapter package's BACKEND, the catalog, the URL resolver",
        ["pikku_queue.adapters.*", "pikku_queue.adapters.catalog", "pikku_queue.adapters"],
    ),
    ("plain values", ["pikku_queue.outcomes", "pikku_queue.records"]),
    (
        "the payload reader and writer, processors, the observer registry",
        [
            "pikku_queue.payloads",
            "pikku_queue.fields",
            "pikku_queue.processor",
            "pikku_queue.declarations",
            "pikku_queue.observe",
        ],
    ),
    (
        "the engine and the backend contract",
        ["pikku_queue.engine", "pikku_queue.backend", "pikku_queue.counts"],
    ),
    ("observers", ["pikku_queue.metrics", "pikku_queue.tracing", "pikku_queue.loopwatch"]),
    (
        "consumers and producers",
        [
            "pikku_queue.burst",
            "pikku_queue.pull",
            "pikku_queue.push",
            "pikku_queue.registry",
            "pikku_queue.client",
            "pikku_queue.monitor",
        ],
    ),
    ("backends", ["pikku_queue.adapters.*.*"]),
    (
        "entry points",
        [
            "pikku_queue.runner",
            "pikku_queue.runner.*",
            "pikku_queue.testing",
            "pikku_queue.conformance",
            "pikku_queue.conformance.*",
            "pikku_queue.worker",
            "pikku_queue.__main__",
            "pikku_queue",
        ],
    ),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(RUNTIME).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int:
    for index, (_, patterns) in enumerate(LAYERS):
        if any(
            fnmatch.fnmatchcase(module, p) and module.count(".") == p.count(".") for p in patterns
        ):
            return index
    raise AssertionError(f"{module} is in no layer: add it to LAYERS in {__file__}")


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST) -> Iterator[ast.AST]:
    """Every node, except the bodies of `if TYPE_CHECKING:`."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _type_checking(child):
            yield from (n for stmt in child.orelse for n in [stmt, *_walk(stmt)])
            continue
        yield child
        yield from _walk(child)


def imports_of(module: str) -> set[str]:
    """The `pikku_queue` modules `module` imports at run time, anywhere in it."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in _walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "pikku_queue")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            if base.split(".")[0] != "pikku_queue":
                continue
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in MODULES else base)
    found.discard(module)
    return {m for m in found if m in MODULES}


GRAPH = {module: imports_of(module) for module in MODULES}


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        layer_of(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module: str) -> None:
    mine = layer_of(module)
    upward = sorted(
        f"{target} ({LAYERS[layer_of(target)][0]})"
        for target in GRAPH[module]
        if layer_of(target) > mine
    )
    assert not upward, f"{module} ({LAYERS[mine][0]}) imports a higher layer: {upward}"


def test_the_import_graph_has_no_cycle() -> None:
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(GRAPH[module]):
            if state.get(target) == 1:
                cycle = [*path[path.index(target) :], target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)


def _loaded_after_import(module: str) -> set[str]:
    code = f"import sys, {module}; print(' '.join(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=RUNTIME
    )
    assert done.returncode == 0, f"import {module} alone fails:\n{done.stderr}"
    return set(done.stdout.split())


#: In one interpreter, each module imported after every `pikku_queue` module is forgotten:
#: the package's own import order starts afresh each time (third-party modules stay loaded,
#: which cannot hide a cycle of ours), at the cost of one process instead of one per module.
_EACH_ALONE = r"""
import importlib, sys, traceback
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "pikku_queue" or m.startswith("pikku_queue.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failed.append(name + ":\n" + traceback.format_exc())
print("\n".join(failed))
"""


def test_every_module_imports_alone() -> None:
    """Each module with no other `pikku_queue` module loaded before it: an import that only
    works after another module was loaded first (what a cycle broken by import order looks
    like) fails here."""
    done = subprocess.run(
        [sys.executable, "-c", _EACH_ALONE, *sorted(MODULES)],
        capture_output=True,
        text=True,
        check=True,
        cwd=RUNTIME,
    )
    assert done.stdout.strip() == "", done.stdout


@pytest.mark.parametrize(
    "module",
    [
        "pikku_queue.counts",
        "pikku_queue.outcomes",
        "pikku_queue.records",
        "pikku_queue.capabilities",
        "pikku_queue.adapters.catalog",
        "pikku_queue.options",
    ],
)
def test_value_modules_load_no_engine(module: str) -> None:
    loaded = _loaded_after_import(module)
    heavy = {"pikku_queue.engine", "pikku_queue.backend", "pikku_queue.observe", "asyncio"}
    assert not loaded & heavy, sorted(loaded & heavy)
