"""The Python end of node/pyodide_harness.mjs, inside Pyodide: loads the generated Worker
entry point as wrangler's `main` (a top-level module `cloudflare_worker`), gives each test a
fresh isolate (a new `CloudflareWorker` from the module's own constants), and the namespace
the tests' Python snippets run in."""

from __future__ import annotations

import importlib.util
import json
import sys
from types import ModuleType
from typing import Any

_main: ModuleType | None = None
_path: str | None = None


def configure(path: str) -> None:
    global _path
    _path = path


def main() -> ModuleType:
    global _main
    if _main is None:
        assert _path is not None
        spec = importlib.util.spec_from_file_location("cloudflare_worker", _path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["cloudflare_worker"] = module
        spec.loader.exec_module(module)
        _main = module
    return _main


def bindings() -> dict[str, str]:
    """The bindings of the Worker the next call reaches (a test may swap in its own)."""
    return dict(worker().bindings)


def reset() -> None:
    from pikku_queue.adapters.cloudflare import CloudflareWorker
    from pikku_queue.client import set_default_backend

    module = main()
    module.WORKER = CloudflareWorker(
        module.REGISTRY,
        bindings=module.BINDINGS,
        dead_letters=module.DEAD_LETTERS,
        crons=module.CRONS,
        stalled=module.STALLED,
    )
    set_default_backend(None)


def worker() -> Any:
    return main().WORKER


_namespace: dict[str, Any] = {"json": json, "worker": worker, "main": main}


def namespace() -> dict[str, Any]:
    return _namespace
