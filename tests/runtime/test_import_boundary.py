"""The runtime never pulls in the generator's dependencies: it must stay small enough to run
where only pydantic is installed (a Lambda, Cloudflare's Pyodide)."""

from __future__ import annotations

import subprocess
import sys

MODULES = [
    "pikku_queue",
    "pikku_queue.client",
    "pikku_queue.registry",
    "pikku_queue.pull",
    "pikku_queue.monitor",
    "pikku_queue.testing",
    "pikku_queue.services",
    "pikku_queue.adapters.memory",
    "pikku_queue.adapters.sqlite",
    "pikku_queue.conformance",
]
FORBIDDEN = ["libcst", "jinja2", "typer", "rich", "datamodel_code_generator", "redis", "boto3"]


def test_runtime_modules_import_no_generator_dependency() -> None:
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in MODULES)
        + f"print(sorted(m for m in {FORBIDDEN!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
