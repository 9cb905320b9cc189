"""`postgresql://` / `postgres://`: jobs in the PostgreSQL database the application already
has (`backend`, on psycopg 3), enqueued inside the caller's own transaction when it passes its
connection. This module only declares the backend, so listing it never imports psycopg; its
names are imported on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pikku_queue.capabilities import ALL_FEATURES, BackendEntry, Capabilities
from pikku_queue.lazy import lazy_exports

if TYPE_CHECKING:
    from pikku_queue.adapters.postgresql.backend import PostgresBackend, from_url
    from pikku_queue.adapters.postgresql.connections import raw_connection

__all__ = ["BACKEND", "PostgresBackend", "from_url", "raw_connection"]

BACKEND = BackendEntry(
    capabilities=Capabilities(
        backend="postgresql",
        title="postgresql:// (in your database)",
        supported=ALL_FEATURES,
        notes={
            "cancel_running": "the request is a column of the job's row: a worker in any "
            "process holding the lease sees it within 0.25 s",
        },
    ),
    schemes=("postgresql", "postgres"),
    factory="pikku_queue.adapters.postgresql.backend:from_url",
    extra="postgresql",
    trace_system="postgresql",
)

__getattr__ = lazy_exports(
    __name__,
    {"PostgresBackend": ".backend", "from_url": ".backend", "raw_connection": ".connections"},
)
