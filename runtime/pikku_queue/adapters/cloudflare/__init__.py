"""Cloudflare Queues: a Python Worker's producer (bindings) and consumer (`queue(batch)`).

Pure Python plus pydantic, so it runs on Pyodide. `backend` is the producer face,
`worker` the consumer face, `limits` Cloudflare's numbers and the binding-name rule.
"""

from __future__ import annotations

from pikku_queue.adapters.cloudflare.backend import CloudflareQueueAdapter, IsolateStats
from pikku_queue.adapters.cloudflare.limits import binding_name
from pikku_queue.adapters.cloudflare.worker import CloudflareWorker

__all__ = ["CloudflareQueueAdapter", "CloudflareWorker", "IsolateStats", "binding_name"]
