"""`pikkugen monitor` on the command line: a non-loopback --host without a token is refused
before anything is bound; with the project's registry the monitor serves its queues."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from test_cli import PIKKUGEN, project, run

__all__ = ["project"]

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")


def test_a_non_loopback_host_needs_a_token(project: Path) -> None:
    done = run(project, "monitor", "--host", "127.0.0.2", "--port", "0", ok=False)
    assert done.returncode == 2
    assert "error: --host 127.0.0.2 is not loopback" in done.stderr
    assert "$PIKKU_MONITOR_TOKEN, --token-file or --token" in done.stderr


def test_the_monitor_serves_the_projects_queues(project: Path) -> None:
    run(project, "enqueue", "charge", "--data", '{"id": 7}')
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ}
    env.pop("PIKKU_QUEUE_URL", None)
    server = subprocess.Popen(
        [*PIKKUGEN, "monitor", "--port", str(port)],
        cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/stats") as r:
                    stats = json.loads(r.read())
                break
            except OSError:
                assert server.poll() is None, "the monitor exited"
                assert time.monotonic() < deadline, "the monitor did not answer in 60 s"
                time.sleep(0.2)
        rows = {q["queue"]: q for q in stats["queues"]}
        assert rows["charge"]["counts"]["waiting"] == 1
    finally:
        server.terminate()
        server.communicate(timeout=30)  # reads and closes its pipes
