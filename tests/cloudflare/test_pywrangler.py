"""The example's generated Worker folder (examples/shop/src/shop/generated/cloudflare) under
Cloudflare's own tools, as far as they run offline: pywrangler's checks and its dependency
resolution with the local `pikku-queue` and the example project as path sources
(pywrangler_probe.py), and `wrangler deploy --dry-run` (wrangler 4.85.0, the newest on Node
20) for what a deploy would upload. What does not run here: `pywrangler sync` itself (uv
downloads a Pyodide interpreter and reads index.pyodide.org) and `pywrangler dev`/`deploy`
(pywrangler asks for wrangler >= 4.127.1, which needs Node 22)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pywrangler_venv import ROOT, install
from wrangler_npm import install as install_wrangler

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).resolve().parent / "pywrangler_probe.py"
WORKER = Path("examples/shop/src/shop/generated/cloudflare")


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The example and the runtime where the Worker project's path sources expect them."""
    shutil.copytree(REPO / "examples" / "shop", tmp_path / "examples" / "shop")
    (tmp_path / "runtime").symlink_to(REPO / "runtime")
    return tmp_path


def probe(folder: Path) -> dict[str, Any]:
    bin_dir, wheels = install()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("UV_", "VIRTUAL_ENV"))},
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "UV_OFFLINE": "1",
        "UV_NO_INDEX": "1",
        "UV_FIND_LINKS": str(wheels),
        "UV_CACHE_DIR": str(ROOT / "uv-cache"),
    }
    done = subprocess.run(
        [str(bin_dir / "python"), str(PROBE)],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_pywranglers_checks_and_resolution_pass_on_the_generated_worker(checkout: Path) -> None:
    folder = checkout / WORKER

    report = probe(folder)

    assert report["requirements_txt"] == "ok"
    # compatibility date 2025-11-01: Python 3.13, Pyodide 0.28's interpreter and index
    assert report["python"] == "3.13"
    assert report["pyodide_interpreter"] == "cpython-3.13.2-emscripten-wasm32-musl"
    assert report["dependencies"] == ["pikku-queue", "pydantic", "shop-example"]
    assert report["local_packages"] == ["pikku-queue", "shop-example"]
    assert {"pydantic", "pydantic-core", "workers-runtime-sdk"} <= set(report["resolved"])
    directories = {name: (folder / path).resolve() for name, path in report["directories"].items()}
    assert directories == {
        "pikku-queue": (REPO / "runtime").resolve(),
        "shop-example": (checkout / "examples" / "shop").resolve(),
    }
    print(f"pywrangler dev asks for wrangler >= {report['min_wrangler']}")


def test_pywrangler_refuses_a_requirements_txt_beside_the_project(checkout: Path) -> None:
    """What the generated folder must never hold (the sqs runtime's requirements.txt lives in
    the generated package, one level up)."""
    folder = checkout / WORKER
    assert (folder.parent / "requirements.txt").is_file()
    (folder / "requirements.txt").write_text("pikku-queue\n")

    assert probe(folder) == {"requirements_txt": "exit 1"}


def test_a_deploy_uploads_the_entry_point_and_python_modules_once(
    checkout: Path, tmp_path: Path
) -> None:
    """After `pywrangler sync` the folder holds .venv-workers and python_modules: the module
    root (src/) holds only the entry point, so neither is walked; python_modules is attached
    once, as vendored modules."""
    folder = checkout / WORKER
    site = folder / ".venv-workers" / "lib" / "python3.13" / "site-packages" / "stray"
    site.mkdir(parents=True)
    (site / "__init__.py").write_text("")
    (folder / ".venv-workers" / "LICENSE.txt").write_text("")
    vendored = folder / "python_modules" / "vendored_pkg"
    vendored.mkdir(parents=True)
    (vendored / "__init__.py").write_text("")
    node = shutil.which("node")
    assert node is not None
    wrangler = install_wrangler() / "node_modules" / "wrangler" / "bin" / "wrangler.js"
    out = tmp_path / "upload"

    done = subprocess.run(
        [node, str(wrangler), "deploy", "--dry-run", "--outdir", str(out)],
        cwd=folder,
        env={**os.environ, "WRANGLER_SEND_METRICS": "false", "CI": "true"},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    uploaded = sorted(
        p.relative_to(out).as_posix()
        for p in out.rglob("*")
        if p.is_file() and p.name != "README.md"
    )
    assert uploaded == ["cloudflare_worker.py", "python_modules/vendored_pkg/__init__.py"]
