"""Runtime "redis": `redis_worker.py`, a few lines starting the runtime's one runner on the
generated registry with Redis URLs only (templates/redis/). Its limits are all in the redis
capabilities entry, so it adds no generate-time checks of its own."""

from __future__ import annotations

from pikkugen.runtimes import RuntimePlugin
from pikkugen.runtimes.redis import redis_worker

PLUGIN = RuntimePlugin(
    name="redis", emitters=(("redis_worker", redis_worker.emit),), templates="redis"
)
