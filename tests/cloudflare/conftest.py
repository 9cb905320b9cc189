"""The generated Worker of the `cloudflare` golden case, imported under CPython.

A Python Worker imports `workers.WorkerEntrypoint`, which only exists inside Cloudflare's
runtime; here a stand-in with the same shape (an `env` attribute) is installed as `workers`,
the only thing that is not the generated code itself.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cf_support import CASE, read_jsonc


class WorkerEntrypoint:
    def __init__(self, ctx: Any = None, env: Any = None) -> None:
        self.ctx = ctx
        self.env = env


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[types.ModuleType]:
    """The golden case's Worker entry point (`cf_gen/cloudflare/src/cloudflare_worker.py`,
    its expected/ output, which the golden test keeps equal to what `pikkugen scan` writes),
    imported as wrangler's `main`: a top-level module, with the app and `cf_gen` importable
    (what pywrangler vendors)."""
    root = tmp_path_factory.mktemp("cf") / "src"
    shutil.copytree(CASE / "src", root)
    shutil.copytree(CASE / "expected", root / "cf_gen")
    workers = types.ModuleType("workers")
    workers.WorkerEntrypoint = WorkerEntrypoint  # type: ignore[attr-defined]
    saved = sys.modules.get("workers")
    sys.modules["workers"] = workers
    sys.path.insert(0, str(root))
    entry = root / "cf_gen" / "cloudflare" / "src" / "cloudflare_worker.py"
    spec = importlib.util.spec_from_file_location("cloudflare_worker", entry)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(root))
        for name in [n for n in sys.modules if n.split(".")[0] in ("cf_gen", "cf_app")]:
            del sys.modules[name]
        if saved is None:
            del sys.modules["workers"]
        else:
            sys.modules["workers"] = saved


@pytest.fixture(scope="session")
def wrangler() -> Any:
    return read_jsonc(CASE / "expected" / "cloudflare" / "wrangler.jsonc")
