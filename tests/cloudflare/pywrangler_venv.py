"""pywrangler (PyPI `workers-py`, Cloudflare's Python Workers CLI) and the `uv` it drives, in
a venv of their own under .pip-cache/pywrangler (installed once with pip, like the npm
caches; the test venv stays free of workers-py's `pyodide` and `workers` stand-ins), plus
the host wheels its dependency resolution reads offline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ROOT = REPO / ".pip-cache" / "pywrangler"
VENV = ROOT / "venv"
WHEELS = ROOT / "wheels"
PACKAGES = ("workers-py==1.17.9", "uv==0.13.10")
#: What the generated Worker project resolves to besides its path sources.
RESOLVED = ("pydantic==2.14.4", "workers-runtime-sdk")


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        pytest.fail(f"{what} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")


def install() -> tuple[Path, Path]:
    """(the venv's bin folder, the wheels folder)."""
    python = VENV / "bin" / "python"
    marker = VENV / "installed.txt"
    if not marker.is_file() or marker.read_text() != "\n".join(PACKAGES):
        _run([sys.executable, "-m", "venv", "--clear", str(VENV)], "python -m venv")
        _run([str(python), "-m", "pip", "install", "--quiet", *PACKAGES], "pip install workers-py")
        marker.write_text("\n".join(PACKAGES))
    if not any(WHEELS.glob("pydantic_core-*.whl")):
        WHEELS.mkdir(parents=True, exist_ok=True)
        _run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(WHEELS), *RESOLVED],
            "pip download of the Worker's dependencies",
        )
    return VENV / "bin", WHEELS
