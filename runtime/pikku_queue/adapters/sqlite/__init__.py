"""`sqlite:///path.db`: the embedded default backend (`backend`, on stdlib `sqlite3`). This
module only declares the backend; its names are imported on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pikku_queue.capabilities import ALL_FEATURES, BackendEntry, Capabilities
from pikku_queue.lazy import lazy_exports

if TYPE_CHECKING:
    from pikku_queue.adapters.sqlite.backend import (
        PROCESSOR_SCHEDULE_KEY,
        SCHEMA,
        SqliteBackend,
        Tx,
        from_url,
        path_from_url,
    )

__all__ = [
    "BACKEND",
    "PROCESSOR_SCHEDULE_KEY",
    "SCHEMA",
    "SqliteBackend",
    "Tx",
    "from_url",
    "path_from_url",
]

BACKEND = BackendEntry(
    capabilities=Capabilities(
        backend="sqlite",
        title="sqlite:/// (embedded default)",
        supported=ALL_FEATURES,
    ),
    schemes=("sqlite",),
    factory="pikku_queue.adapters.sqlite.backend:from_url",
    extra=None,
    trace_system="sqlite",
)

__getattr__ = lazy_exports(__name__, dict.fromkeys(__all__[1:], ".backend"))
