"""A Python Worker runs on Pyodide, which carries pure-Python packages plus the few it ships
(pydantic among them): what the Worker imports must stay within that."""

from __future__ import annotations

import json
import subprocess
import sys

#: Third-party packages the Worker may import: pydantic and its own dependencies, and
#: opentelemetry-api, which pikku_queue imports only when it is installed.
ALLOWED = {
    "pydantic",
    "pydantic_core",
    "typing_extensions",
    "annotated_types",
    "typing_inspection",
    "opentelemetry",
    "_distutils_hack",  # setuptools' .pth hook in this venv, not imported by us
}

PROBE = """
import json, sys, sysconfig
import pikku_queue.adapters.cloudflare, pikku_queue.client, pikku_queue.registry
site = sysconfig.get_paths()["purelib"]
print(json.dumps(sorted({
    name.split(".")[0]
    for name, module in list(sys.modules.items())
    if (getattr(module, "__file__", None) or "").startswith(site)
})))
"""


def test_the_cloudflare_runtime_imports_only_what_pyodide_can_load() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    imported = set(json.loads(done.stdout))
    assert "pydantic" in imported
    assert imported <= ALLOWED, f"not loadable on Pyodide: {sorted(imported - ALLOWED)}"
