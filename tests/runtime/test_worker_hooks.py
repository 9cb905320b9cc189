"""`pikkugen worker` start-up hooks, through the real CLI on a scanned project: the
`[tool.pikkugen] events` user hook gets the worker's events, and an async
processor that blocks the loop is named in a warning (wired in the runner)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PIKKUGEN = [sys.executable, "-c", "from pikkugen.cli import main; main()"]

JOBS = """
import time
from pikku_queue import JobContext, queue_processor


@queue_processor("ping")
async def ping(ctx: JobContext, data: dict[str, int]) -> int:
    return 1


@queue_processor("stuck")
async def stuck(ctx: JobContext, data: dict[str, int]) -> int:
    time.sleep(2.0)
    return 2
"""

HOOKS = """
import json
import os


def on_event(event):
    with open(os.environ["EVENTS_FILE"], "a") as out:
        out.write(json.dumps([event.name, event.queue]) + "\\n")
"""


def run(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "PIKKU_QUEUE_URL"}
    environment.update(env)
    return subprocess.run(
        [*PIKKUGEN, *args], cwd=cwd, capture_output=True, text=True, env=environment, timeout=120
    )


def project(tmp_path: Path, events: str) -> Path:
    root = tmp_path / "proj"
    (root / "src" / "app").mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        f'[tool.pikkugen]\npaths = ["src"]\nout = "src/app_gen"\nevents = "{events}"\n'
    )
    (root / "src" / "app" / "__init__.py").write_text("")
    (root / "src" / "app" / "jobs.py").write_text(JOBS)
    (root / "src" / "app" / "hooks.py").write_text(HOOKS)
    assert run(root, "scan").returncode == 0
    return root


def test_the_events_hook_and_the_loop_watch(tmp_path: Path) -> None:
    root = project(tmp_path, "app.hooks:on_event")
    for queue in ("ping", "stuck"):
        assert run(root, "enqueue", queue).returncode == 0
    log = tmp_path / "events.jsonl"
    worker = run(root, "worker", "--burst", EVENTS_FILE=str(log))
    assert worker.returncode == 0, worker.stdout + worker.stderr
    seen = [json.loads(line) for line in log.read_text().splitlines()]
    assert ["completed", "ping"] in seen and ["completed", "stuck"] in seen
    output = worker.stdout + worker.stderr
    assert "the event loop was blocked for" in output
    assert "stuck (app.jobs.stuck)" in output
    assert "ping (app.jobs.ping)" not in output.split("blocked for", 1)[1].split("\n", 1)[0]


def test_an_events_hook_that_does_not_import_stops_the_worker(tmp_path: Path) -> None:
    root = project(tmp_path, "app.hooks:on_evnt")
    worker = run(root, "worker", "--burst")
    assert worker.returncode == 2
    assert "the events hook 'app.hooks:on_evnt' cannot be loaded" in worker.stderr


def test_python_m_pikku_queue_worker_anchors_and_checks_freshness(tmp_path: Path) -> None:
    # The runtime's own runner (no pikkugen installed): the same anchoring and freshness rule.
    root = project(tmp_path, "app.hooks:on_event")
    assert run(root, "enqueue", "ping").returncode == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    command = [sys.executable, "-m", "pikku_queue", "worker", "--registry", "app_gen"]
    env = {k: v for k, v in os.environ.items() if k != "PIKKU_QUEUE_URL"}
    env["PYTHONPATH"] = str(root / "src")
    jobs = root / "src" / "app" / "jobs.py"
    jobs.write_text(jobs.read_text() + "\n# edited after the scan\n")
    refused = subprocess.run(
        [*command, "--burst", "--queues", "ping", "--strict"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert refused.returncode == 2
    assert "registry is older than src/app/jobs.py" in refused.stderr
    served = subprocess.run(
        [*command, "--burst", "--queues", "ping"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert served.returncode == 0, served.stdout + served.stderr
    db = (root / ".pikku" / "queue.db").as_posix()
    assert served.stdout.splitlines()[0].startswith(f"worker on sqlite:///{db}")
    assert "completed=1" in served.stdout
    assert "warning: registry is older than src/app/jobs.py" in served.stderr
    assert not (elsewhere / ".pikku").exists()
