"""`memory://`: an in-process backend for tests and demos.

It is the SQLite backend's exact logic on a private `:memory:` database, run inline on the
event loop instead of on a thread. Reusing the store (rather than a second, dict-based one)
means a test on memory exercises the same leasing, retry, dead-letter and schedule rules as
production on SQLite; every payload still makes a JSON round trip and every call is a real
suspension point, so code that works here does not depend on in-process shortcuts.

`memory://` and `memory://NAME` are shared per process (a client and a worker in one process
see the same jobs); `MemoryBackend()` is always a fresh, private store. Pass a
`VirtualClock` to make delays and backoff instant.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pikku_queue.adapters.memory import BACKEND
from pikku_queue.adapters.sqlite.backend import SqliteBackend
from pikku_queue.clock import Clock


class MemoryBackend(SqliteBackend):
    """A private in-process job store."""

    poll_interval_s = 0.005

    def __init__(self, *, clock: Clock | None = None, url: str = "memory://") -> None:
        super().__init__(":memory:", clock=clock, url=url, _inline=True)
        self.capabilities = BACKEND.capabilities


_SHARED: dict[str, MemoryBackend] = {}


def from_url(url: str) -> MemoryBackend:
    name = urlsplit(url).netloc + urlsplit(url).path
    backend = _SHARED.get(name)
    if backend is None or backend.closed:
        backend = _SHARED[name] = MemoryBackend(url=url)
    return backend
