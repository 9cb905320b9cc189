"""The backends this runtime ships, in one list: the one line a backend registers.

Each backend declares itself once, in its adapter package's `__init__` (`BACKEND`, a
`pikku_queue.capabilities.BackendEntry`: schemes, factory, pip extra, trace system name and
capabilities); everything else reads it from here: the URL resolver (`connect` and its install
hint), tracing's `messaging.system`, the generator's checks and the README's support table (in
this order, its columns), the client's refusals and the conformance suite's skips. A test
fails if a backend listed here is missing from any of them.

Importing this module imports only those small declarations, never a backend itself.
"""

from __future__ import annotations

from pikku_queue.adapters import cloudflare, memory, postgresql, redis, sqlite, sqs
from pikku_queue.capabilities import BackendEntry, Capabilities

#: Every built-in backend, in the support table's order.
BACKENDS: tuple[BackendEntry, ...] = (
    memory.BACKEND,
    sqlite.BACKEND,
    redis.BACKEND,
    postgresql.BACKEND,
    sqs.BACKEND,
    cloudflare.BACKEND,
)

#: Each backend's capabilities by name.
CAPABILITIES: dict[str, Capabilities] = {entry.name: entry.capabilities for entry in BACKENDS}

#: Each URL scheme's backend.
BY_SCHEME: dict[str, BackendEntry] = {
    scheme: entry for entry in BACKENDS for scheme in entry.schemes
}


def trace_system(url: str) -> str:
    """The `messaging.system` of a backend URL (its scheme itself for an unknown one)."""
    scheme = url.partition("://")[0]
    entry = BY_SCHEME.get(scheme)
    return entry.trace_system if entry is not None else (scheme or "pikku")
