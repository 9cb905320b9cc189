"""Running the Node BullMQ scripts of tests/interop/node with the packages npm installed."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NODE_SOURCES = Path(__file__).resolve().parent / "node"


@dataclass(frozen=True)
class NodeBullMQ:
    """Runs the scripts of tests/interop/node with the installed packages."""

    node: str
    prefix_dir: Path

    def run(self, script: str, *args: str, timeout: float = 90) -> Any:
        done = subprocess.run(
            [self.node, str(NODE_SOURCES / script), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={"NODE_PATH": str(self.prefix_dir / "node_modules"), "PATH": "/usr/bin:/bin"},
        )
        assert done.returncode == 0, f"{script} failed ({done.returncode}): {done.stderr}"
        return json.loads(done.stdout.strip().splitlines()[-1])

    def start(self, script: str, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [self.node, str(NODE_SOURCES / script), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={"NODE_PATH": str(self.prefix_dir / "node_modules"), "PATH": "/usr/bin:/bin"},
        )
