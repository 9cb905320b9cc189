"""What one monitor serves: the backend URL, the queues, who may call it.

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
    #: Embedded in the page and required on a state-changing request (`auth.require_csrf`).
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    @property
    def dlqs(self) -> list[str]:
        return sorted({d for d in self.dead_letter_queues.values() if d})
