"""`postgresql://` / `postgres://`: jobs in the PostgreSQL database the application already
has (`backend`, on psycopg 3), enqueued inside the caller's own transaction when it passes its
connection. This module only declares the backend, so listing it never imports psycopg; its
names are imported on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pikku_queue.capabilities import ALL_FEATURES, BackendEntry, Capabilities, Feature
from pikku_queue.lazy import lazy_exports

if TYPE_CHECKING:
    from pikku_queue.adapters.postgresql.backend import PostgresBackend, from_url
    from pikku_queue.adapters.postgresql.connections import raw_connection

__all__ = ["BACKEND", "PostgresBackend", "from_url", "raw_connection"]

#: Rate limits and deduplication, not built for this backend yet.
_LIMITS_NOT_YET: frozenset[Feature] = frozenset(
    {"rate_limit", "rate_limit_group", "dedupe", "dedupe_replace", "dedupe_extend"}
)

BACKEND = BackendEntry(
    capabilities=Capabilities(
        backend="postgresql",
        title="postgresql:// (in your database)",
        supported=ALL_FEATURES - _LIMITS_NOT_YET,
        notes=dict.fromkeys(_LIMITS_NOT_YET, "not built for postgresql:// yet"),
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
