"""Pyodide for the Cloudflare tests, fetched once through the ordinary clients and cached:
npm's `pyodide` package into .npm-cache/pyodide (like the other npm caches) and the
Pyodide (emscripten) wheels of pydantic from PyPI with `pip download --platform …
--only-binary=:all:` into .pip-cache/pyodide beside it. Offline after the first run.

Which Pyodide: Cloudflare's compatibility date 2025-11-01 (the generated one) selects
Pyodide 0.28.2 / Python 3.13 (workerd's `python_metadata.bzl`), whose wheels carry the
`pyodide_2025_0_wasm32` tag; PyPI has no pydantic-core wheel for it (pydantic-core
publishes `pyemscripten_2026_0_wasm32` wheels, for Python 3.14). So the tests run Pyodide
314.0.4 / Python 3.14.2, the release workerd ships for `python_workers_20260610`, and the
docs say so.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PREFIX = REPO / ".npm-cache" / "pyodide"
WHEELS = REPO / ".pip-cache" / "pyodide"
PYODIDE_VERSION = "314.0.4"
#: pydantic with a pydantic-core release that has a wheel for the platform below.
PYDANTIC = "pydantic==2.14.4"
PLATFORM = ("pyemscripten_2026_0_wasm32", "3.14")
#: The wheels the Worker imports: pydantic, pydantic-core and their pure dependencies.
WHEEL_NAMES = ("pydantic-", "pydantic_core-", "typing_extensions-", "annotated_types-")


def _installed() -> str | None:
    manifest = PREFIX / "node_modules" / "pyodide" / "package.json"
    if not manifest.is_file():
        return None
    return str(json.loads(manifest.read_text())["version"])


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        pytest.fail(f"{what} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")


def install() -> tuple[Path, list[Path]]:
    """(the pyodide package folder, the wheels); fails (never skips) when a client is missing."""
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        pytest.fail("the Pyodide tests need node and npm on PATH (apt-get install nodejs npm)")
    if _installed() != PYODIDE_VERSION:
        PREFIX.mkdir(parents=True, exist_ok=True)
        (PREFIX / "package.json").write_text(
            json.dumps({"private": True, "dependencies": {"pyodide": PYODIDE_VERSION}}) + "\n"
        )
        _run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(PREFIX)],
            f"npm install pyodide@{PYODIDE_VERSION}",
        )
    wheels = sorted(WHEELS.glob("*.whl"))
    if not all(any(w.name.startswith(n) for w in wheels) for n in WHEEL_NAMES):
        WHEELS.mkdir(parents=True, exist_ok=True)
        platform, python = PLATFORM
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--only-binary=:all:",
                "--platform",
                platform,
                "--python-version",
                python,
                "--implementation",
                "cp",
                "--dest",
                str(WHEELS),
                PYDANTIC,
            ],
            f"pip download {PYDANTIC} for {platform}",
        )
        wheels = sorted(WHEELS.glob("*.whl"))
    return PREFIX / "node_modules" / "pyodide", wheels
