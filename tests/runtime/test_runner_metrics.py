"""`--metrics-port` on the runner (`python -m pikku_queue worker`, which `pikkugen worker` is):
the /metrics server starts with the worker and a port already taken is one error line."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from test_cli import project, run
from test_runner import errors, python_m

__all__ = ["project"]

pytest.importorskip("prometheus_client")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_runner_serves_metrics(project: Path) -> None:
    run(project, "enqueue", "charge", "--data", '{"id": 7}')
    url = f"sqlite:///{(project / 'queue.db').as_posix()}"
    port = _free_port()
    done = python_m(
        project, "worker", "--registry", "shop.generated", "--backend", url,
        "--queues", "charge", "--burst", "--metrics-port", str(port),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"metrics on http://127.0.0.1:{port}/metrics" in done.stderr
    assert "worker done: completed=1" in done.stdout


def test_a_taken_metrics_port_is_one_error_line(project: Path) -> None:
    url = f"sqlite:///{(project / 'queue.db').as_posix()}"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = python_m(
            project, "worker", "--registry", "shop.generated", "--backend", url,
            "--burst", "--metrics-port", str(port),
        )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    [line] = errors(done)
    assert f"cannot serve /metrics on 127.0.0.1:{port}" in line
