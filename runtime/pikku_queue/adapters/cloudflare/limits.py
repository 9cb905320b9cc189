"""Cloudflare Queues' limits and the one rule that names a queue's binding.

The numbers are Cloudflare's, from https://developers.cloudflare.com/queues/platform/limits/
("1 KB is measured as 1000 bytes"; up to ~100 bytes of internal metadata count towards a
message). The binding rule is shared by the generator (wrangler config, generated worker) and
the runtime, so both always name a queue's binding alike.
"""

from __future__ import annotations

import math
import re

#: Largest message, bytes, metadata included.
MAX_MESSAGE_BYTES = 128_000
#: Internal metadata Cloudflare counts towards a message's size.
METADATA_BYTES = 100
#: sendBatch: at most this many messages, and this many bytes in total, per call.
MAX_BATCH_MESSAGES = 100
MAX_BATCH_BYTES = 256_000
#: delaySeconds when sending or retrying: 12 hours. (Local miniflare accepts up to 86,400 s;
#: the production limit, which the limits page states, is what we hold to.)
MAX_DELAY_SECONDS = 43_200
#: Consumer settings in the wrangler config (https://developers.cloudflare.com/queues/configuration/configure-queues/).
MAX_CONSUMER_BATCH = 100
MAX_BATCH_TIMEOUT_SECONDS = 60
MAX_RETRIES = 100
#: A consumer invocation's wall clock (the Workers limit for queue consumers), ms.
CONSUMER_WALL_CLOCK_MS = 15 * 60_000
#: CPU time per invocation, ms: Cloudflare's default, and the most `limits.cpu_ms` can ask for.
DEFAULT_CPU_MS = 30_000
MAX_CPU_MS = 300_000
#: The longest queue name.
MAX_QUEUE_NAME = 63
#: The suffix of the queue Cloudflare itself moves a consumer's exhausted messages to.
STALLED_SUFFIX = "-stalled"

_NOT_IDENTIFIER = re.compile(r"[^A-Z0-9]")


def binding_name(queue: str) -> str:
    """`orders-eu` → `QUEUE_ORDERS_EU`: the env binding of a queue, a JavaScript identifier.
    Cloudflare queue names hold only [a-z0-9-], so the mapping is one to one."""
    return "QUEUE_" + _NOT_IDENTIFIER.sub("_", queue.upper())


def delay_seconds(delay_ms: int) -> int:
    """Whole seconds for a delay in ms, rounded up (a job never runs early)."""
    return math.ceil(delay_ms / 1000) if delay_ms > 0 else 0


def stalled_queue(queue: str) -> str:
    """`orders` → `orders-stalled`: the consumer's Cloudflare `dead_letter_queue`, where
    Cloudflare moves a message it retried `max_retries` times without the Worker's answer.
    Shared by the generator (wrangler config) and the Worker (which consumes it)."""
    return queue[: MAX_QUEUE_NAME - len(STALLED_SUFFIX)] + STALLED_SUFFIX
