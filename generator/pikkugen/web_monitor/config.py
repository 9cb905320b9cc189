"""What one monitor serves: the backend URL, the queues, who may call it and by which name.

Plain data, built by `pikkugen monitor` from the project's registry (or by a test): the web
layer reads it through `MonitorState` and never looks at the registry itself.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field


@dataclass
class MonitorConfig:
    url: str
    queues: list[str]
    #: queue → its dead-letter queue (None: it has none).
    dead_letter_queues: dict[str, str | None]
    token: str | None = None
    window_ms: int = 300_000
    #: The address the server is bound to: a `Host` naming it is accepted (`hosts`).
    host: str = "127.0.0.1"
    #: More names a `Host` may carry (`--allowed-host`: `name` or `name:port`), for a reverse
    #: proxy or a bind on another interface.
    allowed_hosts: tuple[str, ...] = ()
    #: Embedded in the page and required on a state-changing request (`auth.require_csrf`).
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    @property
    def dlqs(self) -> list[str]:
        return sorted({d for d in self.dead_letter_queues.values() if d})

    @property
    def known_queues(self) -> list[str]:
        """Every queue a request may name: the registry's and their dead-letter queues."""
        return self.queues + [d for d in self.dlqs if d not in self.queues]
