"""`redis://` / `rediss://`: the BullMQ-compatible backend (`backend`, on the official
`bullmq` package; `consumer` the worker). This module only declares the backend, so listing
it never imports redis or bullmq; its names are imported on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pikku_queue.capabilities import ALL_FEATURES, BackendEntry, Capabilities
from pikku_queue.lazy import lazy_exports

if TYPE_CHECKING:
    from pikku_queue.adapters.redis.backend import RedisBackend, from_url

__all__ = ["BACKEND", "RedisBackend", "from_url"]

BACKEND = BackendEntry(
    capabilities=Capabilities(
        backend="redis",
        title="redis:// (BullMQ)",
        supported=ALL_FEATURES - {"rate_limit_group"},
        notes={
            "priority": "BullMQ's order: jobs without a priority run before prioritised ones",
            "rate_limit": "BullMQ's global rate limit (the queue's meta `max` / `duration`, "
            "the `limiter` key): Node workers on the queue keep it too",
            "rate_limit_group": "per-group rate limits are BullMQ Pro's (groups), not BullMQ's",
            "dedupe": "BullMQ's deduplication option (`de:` keys): Node producers with the same "
            "deduplication id interoperate",
            "dedupe_extend": "BullMQ's extend mode; the earlier job's delay is pushed back by a "
            "second call (changeDelay), not in the same script",
        },
    ),
    schemes=("redis", "rediss"),
    factory="pikku_queue.adapters.redis.backend:from_url",
    extra="redis",
    trace_system="redis",
)

__getattr__ = lazy_exports(__name__, {"RedisBackend": ".backend", "from_url": ".backend"})
