"""Node BullMQ beside our Python side: the npm packages (installed once into .npm-cache/) and
a private redis-server for the session.

Interop is required in CI: a machine without node or npm fails these tests with a message
saying what to install, it does not skip them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "redis"))
sys.path.insert(0, str(HERE))

from node_bullmq import NODE_SOURCES, NodeBullMQ  # noqa: E402
from redis_server import RedisServer  # noqa: E402

REPO = HERE.parents[1]
NPM_PREFIX = REPO / ".npm-cache" / "interop"


def _installed_version(prefix: Path, package: str) -> str | None:
    manifest = prefix / "node_modules" / package / "package.json"
    if not manifest.is_file():
        return None
    return str(json.loads(manifest.read_text())["version"])


@pytest.fixture(scope="session")
def node_bullmq() -> NodeBullMQ:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail(
            "Node BullMQ interop needs node (>= 18) and npm on PATH; install them "
            "(Debian: apt-get install nodejs npm) — these tests are required, not optional"
        )
    wanted = json.loads((NODE_SOURCES / "package.json").read_text())["dependencies"]
    NPM_PREFIX.mkdir(parents=True, exist_ok=True)
    if any(_installed_version(NPM_PREFIX, name) != version for name, version in wanted.items()):
        shutil.copy(NODE_SOURCES / "package.json", NPM_PREFIX / "package.json")
        done = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--no-save", "--prefix", str(NPM_PREFIX)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            pytest.fail(f"npm install of {wanted} failed:\n{done.stderr[-3000:]}")
    return NodeBullMQ(node, NPM_PREFIX)


@pytest.fixture
def prefix() -> str:
    return f"i{uuid.uuid4().hex[:10]}"


@pytest.fixture
def connection(redis_server: RedisServer) -> str:
    """ioredis connection options for the session server, as JSON for the Node scripts."""
    return json.dumps({"host": "127.0.0.1", "port": redis_server.port, "db": 0})
