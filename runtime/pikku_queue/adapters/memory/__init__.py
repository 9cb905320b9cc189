"""`memory://`: an in-process backend for tests and demos (`backend`: the SQLite backend's
logic on a private `:memory:` database). This module only declares the backend; its names are
imported on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pikku_queue.capabilities import ALL_FEATURES, BackendEntry, Capabilities
from pikku_queue.lazy import lazy_exports

if TYPE_CHECKING:
    from pikku_queue.adapters.memory.backend import MemoryBackend, from_url

__all__ = ["BACKEND", "MemoryBackend", "from_url"]

BACKEND = BackendEntry(
    capabilities=Capabilities(
        backend="memory",
        title="memory:// (tests)",
        supported=ALL_FEATURES,
    ),
    schemes=("memory",),
    factory="pikku_queue.adapters.memory.backend:from_url",
    extra=None,
    trace_system="pikku_memory",
)

__getattr__ = lazy_exports(__name__, {"MemoryBackend": ".backend", "from_url": ".backend"})
