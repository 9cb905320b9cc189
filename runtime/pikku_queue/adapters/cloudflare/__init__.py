"""Cloudflare Queues: a Python Worker's producer (bindings) and consumer (`queue(batch)`).

Pure Python plus pydantic, so it runs on Pyodide. `backend` is the producer face,
`worker` the consumer face, `limits` Cloudflare's numbers and the binding-name rule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pikku_queue.adapters.cloudflare.backend import CloudflareQueueAdapter, IsolateStats
    from pikku_queue.adapters.cloudflare.limits import binding_name
    from pikku_queue.adapters.cloudflare.worker import CloudflareWorker

__all__ = ["CloudflareQueueAdapter", "CloudflareWorker", "IsolateStats", "binding_name"]

#: Each name's module, imported on first use: the generator reads only `limits` at generate
#: time and should not load the worker, the engine and asyncio with it.
_HOMES = {
    "CloudflareQueueAdapter": "backend",
    "IsolateStats": "backend",
    "binding_name": "limits",
    "CloudflareWorker": "worker",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
