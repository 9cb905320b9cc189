"""The web monitor's vendored uPlot is the npm package's own files (`scripts/vendor-uplot`
checks the tarball's integrity and writes `VENDOR.json`), with its licence, and the wheel ships
every file the page loads."""

from __future__ import annotations

import hashlib
import json
import sys
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("starlette")

from pikkugen.web_monitor.pages import STATIC, static_dir

REPO = Path(__file__).resolve().parents[2]
VENDOR = static_dir() / "vendor"


def test_the_vendored_files_are_the_ones_recorded() -> None:
    manifest = json.loads((VENDOR / "VENDOR.json").read_text(encoding="utf-8"))
    assert manifest["package"] == "uplot" and manifest["licence"] == "MIT"
    assert manifest["integrity"].startswith("sha512-")
    on_disk = {p.name for p in VENDOR.iterdir() if p.name != "VENDOR.json"}
    assert on_disk == set(manifest["files"])
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
    assert "MIT License" in (VENDOR / "uPlot.LICENSE").read_text(encoding="utf-8")
    script = (REPO / "scripts" / "vendor-uplot").read_text(encoding="utf-8")
    assert f"VERSION={manifest['version']}" in script and manifest["integrity"] in script


def test_every_file_the_page_loads_is_served() -> None:
    page = (static_dir() / "index.html").read_text(encoding="utf-8")
    for name in STATIC:
        assert (static_dir() / name).is_file(), name
    for name in ("monitor.js", "monitor.css", "vendor/uPlot.iife.min.js", "vendor/uPlot.min.css"):
        assert f'"static/{name}"' in page, name


@pytest.mark.slow
def test_the_wheel_ships_the_page_and_uplot(tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "tests"))
    from runtime_venv import build_wheels

    _, wheel = build_wheels(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in [*STATIC, "index.html", "vendor/VENDOR.json"]:
        assert f"pikkugen/web_monitor/static/{name}" in names, name
