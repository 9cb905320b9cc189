"""wrangler and miniflare from npm, installed once into .npm-cache/cloudflare (like the BullMQ
interop packages). The versions run on Node 20: wrangler 4.85.0 declares node >= 20.3.0
(4.87 and later need Node 22), and miniflare 4.20260424.0 is the one it depends on."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PREFIX = REPO / ".npm-cache" / "cloudflare"
PACKAGES = {"wrangler": "4.85.0", "miniflare": "4.20260424.0"}


def _installed(package: str) -> str | None:
    manifest = PREFIX / "node_modules" / package / "package.json"
    if not manifest.is_file():
        return None
    return str(json.loads(manifest.read_text())["version"])


def install() -> Path:
    """The prefix with PACKAGES installed; fails (never skips) when node or npm is missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail(
            "the Cloudflare tests need node (>= 20.3) and npm on PATH "
            "(Debian: apt-get install nodejs npm)"
        )
    if any(_installed(name) != version for name, version in PACKAGES.items()):
        PREFIX.mkdir(parents=True, exist_ok=True)
        (PREFIX / "package.json").write_text(
            json.dumps({"private": True, "dependencies": PACKAGES}, indent=2) + "\n"
        )
        done = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(PREFIX)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(f"npm install of {PACKAGES} failed:\n{done.stderr[-3000:]}")
    return PREFIX
