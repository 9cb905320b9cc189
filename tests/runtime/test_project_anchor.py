"""Where jobs land, as a new user met it: a relative SQLite path follows the project, not
the current folder; the standalone client and untyped `queue_job` enqueue where the worker
reads (or refuse an unknown queue); a registry older than its sources is noticed at start.

Every test runs the real `pikkugen scan` on a fresh project and the real CLI (or a plain
`python -c` that imports the generated client) in subprocesses, on real SQLite files.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pikku_queue.project import anchor_url, stale_message

PIKKUGEN = [sys.executable, "-c", "from pikkugen.cli import main; main()"]

JOBS = """
from pydantic import BaseModel
from pikku_queue import JobContext, queue_processor


class Sms(BaseModel):
    to: str


@queue_processor("send-sms", retry_options={"attempts": 3}, dead_letter_queue="send-sms-dlq")
async def send_sms(ctx: JobContext, data: Sms) -> int:
    return len(data.to)
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PIKKU_QUEUE_URL"}
    if "PYTHONPATH" in extra and os.environ.get("PYTHONPATH"):  # keep the session's own
        extra["PYTHONPATH"] += os.pathsep + os.environ["PYTHONPATH"]
    env.update(NO_COLOR="1", **extra)
    return env


def run(cwd: Path, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*PIKKUGEN, *args], cwd=cwd, capture_output=True, text=True, env=_env(**env), timeout=120
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"pikkugen {args} exit {proc.returncode}\n{proc.stdout}{proc.stderr}")
    return proc


def python(cwd: Path, code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=_env(**env),
        timeout=120,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "src" / "app").mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        '[tool.pikkugen]\npaths = ["src"]\nout = "src/app_gen"\n'
        'backend = "sqlite:///.pikku/app.db"\n'
    )
    (root / "src" / "app" / "__init__.py").write_text("")
    (root / "src" / "app" / "jobs.py").write_text(JOBS)
    run(root, "scan")
    return root


def waiting(db: Path, queue: str) -> int:
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
        assert "jobs" in tables, tables
        [(count,)] = conn.execute(
            "select count(*) from jobs where queue = ? and state = 'waiting'", (queue,)
        )
    return int(count)


def test_anchor_url_makes_only_relative_sqlite_paths_absolute(tmp_path: Path) -> None:
    assert anchor_url("sqlite:///.pikku/app.db", tmp_path) == (
        f"sqlite:///{(tmp_path / '.pikku' / 'app.db').as_posix()}"
    )
    absolute = f"sqlite:///{tmp_path.as_posix()}/x.db"
    assert anchor_url(absolute, Path("/elsewhere")) == absolute
    assert anchor_url("redis://127.0.0.1:6379/0", tmp_path) == "redis://127.0.0.1:6379/0"
    assert anchor_url("sqlite:///.pikku/app.db", None) == "sqlite:///.pikku/app.db"


def test_worker_enqueue_dlq_and_client_share_one_file_from_any_folder(project: Path) -> None:
    db = project / ".pikku" / "app.db"
    enqueued = run(project, "enqueue", "send-sms", "--data", '{"to": "+358"}')
    assert str(db.as_posix()) in enqueued.stderr  # the absolute path is shown
    # The generated client imported from an unrelated folder enqueues into the same file.
    elsewhere = project.parent / "elsewhere"
    elsewhere.mkdir()
    imported = python(
        elsewhere,
        "from app_gen.client import enqueue_send_sms_sync\nenqueue_send_sms_sync({'to': '+46'})\n"
        "from pikku_queue import QueueMonitor\nprint(QueueMonitor(queues=['send-sms']).backend.url)\n",
        PYTHONPATH=str(project / "src"),
    )
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == f"sqlite:///{db.as_posix()}"  # the monitor's too
    assert not (elsewhere / ".pikku").exists()
    assert waiting(db, "send-sms") == 2
    # The worker started from src/ finds both jobs; its first line names the absolute file.
    worker = run(project / "src", "worker", "--burst")
    first = worker.stdout.splitlines()[0]
    assert first.startswith(f"worker on sqlite:///{db.as_posix()}"), first
    assert "completed=2" in worker.stdout
    assert not (project / "src" / ".pikku").exists()
    listed = run(project / "src", "dlq", "list", "send-sms-dlq")
    assert db.as_posix() in listed.stderr
    # No absolute path of this machine is written into the generated files users commit.
    for path in (project / "src" / "app_gen").rglob("*"):
        if path.is_file():
            assert str(project) not in path.read_text(), path


def test_standalone_client_carries_the_configured_backend(project: Path, tmp_path: Path) -> None:
    other = tmp_path / "other-service"
    other.mkdir()
    schemas = project / "src" / "app_gen" / "schemas"
    run(other, "client", str(schemas), "--out", "sms_client")
    text = (other / "sms_client" / "registry.py").read_text()
    assert 'BACKEND_URL: str | None = "sqlite:///.pikku/app.db"' in text
    assert str(tmp_path) not in text
    sent = python(
        other / "sms_client" / "..",
        "from sms_client.client import enqueue_send_sms_sync\n"
        "print(enqueue_send_sms_sync({'to': '+1'}).id)\n",
    )
    assert sent.returncode == 0, sent.stderr
    assert not (other / ".pikku").exists()
    assert waiting(project / ".pikku" / "app.db", "send-sms") == 1
    # --backend overrides the configured one.
    run(other, "client", str(schemas), "--out", "mem_client", "--backend", "memory://x")
    assert (
        'BACKEND_URL: str | None = "memory://x"' in (other / "mem_client/registry.py").read_text()
    )


def test_untyped_queue_job_on_an_unknown_queue_is_an_error(project: Path) -> None:
    code = """
    import pikku_queue
    from pikku_queue.errors import UnknownQueueError
    try:
        pikku_queue.queue_job_sync("send-sms", {"to": "+1"})
    except UnknownQueueError as exc:
        print("nothing known:", exc)
    import app_gen.registry  # a registry alone makes the queue known, with its backend
    pikku_queue.queue_job_sync("send-sms", {"to": "+1"})
    try:
        pikku_queue.queue_job_sync("send-smss", {"to": "+1"})
    except UnknownQueueError as exc:
        print("typo:", exc)
    """
    done = python(project.parent, code, PYTHONPATH=str(project / "src"))
    assert done.returncode == 0, done.stderr
    assert "nothing known: no queue 'send-sms'; known: (none)" in done.stdout
    assert "typo: no queue 'send-smss'; known: send-sms; did you mean 'send-sms'?" in done.stdout
    assert waiting(project / ".pikku" / "app.db", "send-sms") == 1
    assert not (project.parent / ".pikku").exists()


def test_a_stale_registry_is_warned_about_or_refused_under_strict(project: Path) -> None:
    jobs = project / "src" / "app" / "jobs.py"
    fresh = run(project, "worker", "--burst")
    assert "registry is older" not in fresh.stderr
    jobs.write_text(JOBS.replace('"attempts": 3', '"attempts": 5'))
    warned = run(project, "worker", "--burst")
    assert "warning: " + stale_message(["src/app/jobs.py"]) in warned.stderr
    refused = run(project, "worker", "--burst", "--strict", check=False)
    assert refused.returncode == 2
    assert stale_message(["src/app/jobs.py"]) in refused.stderr
    run(project, "scan")
    assert "registry is older" not in run(project, "worker", "--burst", "--strict").stderr


def test_an_unknown_queue_hints_at_a_rescan(project: Path) -> None:
    unknown = run(project, "worker", "--queues", "new-queue", "--burst", check=False)
    assert unknown.returncode == 2
    assert "no processor serves queue 'new-queue'" in unknown.stderr
    assert "run `pikkugen scan`" in unknown.stderr


def test_worker_outside_any_project_names_the_missing_pyproject(tmp_path: Path) -> None:
    lost = run(tmp_path, "worker", check=False)
    assert lost.returncode == 2
    assert "no pyproject.toml with a [tool.pikkugen] table" in lost.stderr


def test_the_fingerprint_ignores_line_endings(tmp_path: Path) -> None:
    from pikku_queue.project import fingerprint, stale_sources

    (tmp_path / "jobs.py").write_bytes(b"x = 1\r\ny = 2\r\n")
    recorded = fingerprint(tmp_path, ["jobs.py"])
    (tmp_path / "jobs.py").write_bytes(b"x = 1\ny = 2\n")  # the same file, checked out with LF
    assert stale_sources(tmp_path, recorded) == []
    (tmp_path / "jobs.py").write_bytes(b"x = 1\ny = 3\n")
    assert stale_sources(tmp_path, recorded) == ["jobs.py"]
    (tmp_path / "jobs.py").unlink()
    assert stale_sources(tmp_path, recorded) == ["jobs.py"]
