"""Build this repository's two wheels and a fresh venv holding only the runtime's (with the
redis and sqs extras): what a worker host or a Lambda bundle installs. Shared by
tests/sqs/test_runtime_only_venv.py and benchmarks/lambda_cold.py."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: What the runtime must never need (the generator's dependencies, and the generator).
GENERATOR_ONLY = ("libcst", "jinja2", "typer", "rich", "datamodel_code_generator", "pikkugen")


def build_wheels(dist: Path) -> tuple[Path, Path]:
    """(pikku-queue wheel, pikkugen wheel), built by pip from this checkout."""
    dist.mkdir(parents=True, exist_ok=True)
    for source in (REPO / "runtime", REPO):
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(source)],
            check=True,
            timeout=600,
        )
    [runtime] = sorted(dist.glob("pikku_queue-*.whl"))
    [generator] = sorted(dist.glob("pikkugen-*.whl"))
    return runtime, generator


def runtime_only_venv(folder: Path, runtime_wheel: Path, extras: str = "redis,sqs") -> Path:
    """A new venv with the runtime wheel and its extras' dependencies (from PyPI, through pip's
    cache); returns its python."""
    venv.EnvBuilder(with_pip=True, clear=True).create(folder)
    python = folder / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", f"{runtime_wheel}[{extras}]"],
        check=True,
        timeout=900,
    )
    return python


def importable(python: Path, modules: tuple[str, ...]) -> list[str]:
    """Which of `modules` that venv can import."""
    code = (
        "import importlib.util, sys\n"
        "print(' '.join(m for m in sys.argv[1:] if importlib.util.find_spec(m)))"
    )
    done = subprocess.run(
        [str(python), "-c", code, *modules], capture_output=True, text=True, check=True
    )
    return done.stdout.split()


def site_size(folder: Path) -> int:
    """Bytes under the venv's site-packages."""
    [site] = list(folder.glob("lib/python3*/site-packages"))
    return sum(p.stat().st_size for p in site.rglob("*") if p.is_file())
