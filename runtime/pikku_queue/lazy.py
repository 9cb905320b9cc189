"""Names a package re-exports from its own modules, imported on first use (PEP 562).

A package's `__init__` stays light this way: `pikku_queue` itself (the generator reads
`pikku_queue.options` at scan time without loading the client or asyncio), and each adapter
package, whose `__init__` only declares the backend (`BACKEND`) so that the catalog can list
every backend without importing redis, boto3 or the engine.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` for `package`: `homes` maps each name to the module holding it
    (absolute, or relative to `package` when it starts with a dot). The value is cached in the
    package's namespace after the first lookup."""

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(home if not home.startswith(".") else package + home)
        value = getattr(module, name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
