"""The one worker runner: `python -m pikku_queue worker --registry PKG` on a real SQLite file,
`pikkugen worker --registry/--out` for a generated package that is not where the config says,
and the one backend-URL resolution order every caller uses."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from pikku_queue import adapters, set_default_backend
from pikku_queue.adapters import DEFAULT_URL, resolve_backend, resolve_url
from pikku_queue.client import get_default_backend
from test_cli import project, run

__all__ = ["project"]  # the fixture, shared with test_cli


def python_m(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(project / "src")}
    env.pop("PIKKU_QUEUE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "pikku_queue", *args],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def errors(done: subprocess.CompletedProcess[str]) -> list[str]:
    """The `error:` lines (a warning may come first); never a traceback."""
    assert "Traceback" not in done.stderr, done.stderr
    return [line for line in done.stderr.splitlines() if line.startswith("error:")]


def test_python_m_pikku_queue_worker_runs_the_jobs(project: Path) -> None:
    run(project, "enqueue", "charge", "--data", '{"id": 7}')
    run(project, "enqueue", "charge", "--data", '{"id": -1}')
    url = f"sqlite:///{(project / 'queue.db').as_posix()}"
    done = python_m(
        project, "worker", "--registry", "shop.generated", "--backend", url,
        "--queues", "charge", "--burst", "--concurrency", "2", "--grace", "5",
        "--lease-ms", "5000",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"worker on {url}: charge (burst)" in done.stdout
    assert "worker done: completed=1 retried=0 dead_lettered=1" in done.stdout


def test_a_burst_worker_that_leaves_jobs_undone_says_which_and_exits_3(project: Path) -> None:
    """A row SQLite refuses to change once leased (here a trigger): its verdict cannot be
    stored and stall recovery cannot put it back. The burst worker still ends, a lease length
    later, with one `undone:` line, and the runner's exit status says so."""
    run(project, "enqueue", "charge", "--data", '{"id": 7}', "--job-id", "stuck-1")
    database = project / "queue.db"
    with sqlite3.connect(database) as conn:
        conn.execute(
            "CREATE TRIGGER stuck BEFORE UPDATE ON jobs WHEN old.state = 'active'"
            " BEGIN SELECT RAISE(ABORT, 'this row cannot change'); END"
        )
    url = f"sqlite:///{database.as_posix()}"
    done = python_m(
        project, "worker", "--registry", "shop.generated", "--backend", url,
        "--queues", "charge", "--burst", "--lease-ms", "200",
    )  # fmt: skip
    assert done.returncode == 3, done.stdout + done.stderr
    assert "worker done: completed=0 retried=0 dead_lettered=0 failed=0 stalled=0 undone=1" in (
        done.stdout
    )
    assert "undone: charge: 1 job(s) that no lease hands out and no live lease holds" in (
        done.stdout
    )


def test_the_runner_takes_the_registry_backend_url(project: Path) -> None:
    registry = project / "src" / "shop" / "generated" / "registry.py"
    url = f"sqlite:///{(project / 'other.db').as_posix()}"
    registry.write_text(
        registry.read_text().replace("BACKEND_URL: str | None = None", f"BACKEND_URL = {url!r}")
    )
    done = python_m(project, "worker", "--registry", "shop.generated", "--burst")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"worker on {url}: charge, slow (burst)" in done.stdout
    assert (project / "other.db").is_file()


def test_runner_errors_are_one_line_and_exit_2(project: Path) -> None:
    missing = python_m(project, "worker", "--registry", "shop.nowhere", "--burst")
    assert missing.returncode == 2
    [line] = errors(missing)
    assert line.startswith("error: cannot import the generated registry 'shop.nowhere.registry'")
    (project / "src" / "shop" / "jobs.py").write_text('raise RuntimeError("no config")\n')
    broken = python_m(project, "worker", "--registry", "shop.generated", "--burst")
    assert broken.returncode == 2
    [line] = errors(broken)
    assert line.startswith("error: cannot load the processors: RuntimeError: no config (")
    assert "jobs.py:1)" in line
    unknown = python_m(project, "worker", "--registry", "shop.generated", "--queues", "nope")
    assert unknown.returncode == 2 and "nope" in unknown.stderr
    bad = python_m(project, "worker", "--registry", "shop.generated", "--concurrency", "0")
    assert bad.returncode == 2 and "must be at least 1" in bad.stderr


def test_pikkugen_worker_serves_a_package_scanned_elsewhere(project: Path) -> None:
    """A user who scanned with `--out`: the config's `out` has no package, `--registry` or
    `--out` names the real one."""
    run(project, "enqueue", "charge", "--data", '{"id": 1}')
    shutil.move(project / "src" / "shop" / "generated", project / "src" / "shop" / "elsewhere")
    lost = run(project, "worker", "--burst", ok=False)
    assert lost.returncode == 2 and "cannot import the generated registry" in lost.stderr
    by_package = run(project, "worker", "--burst", "--registry", "shop.elsewhere")
    assert "worker done: completed=1" in by_package.stdout
    by_folder = run(project, "worker", "--burst", "--out", "src/shop/elsewhere")
    assert (
        "worker on sqlite:" in by_folder.stdout and "worker done: completed=0" in by_folder.stdout
    )


def test_one_resolution_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PIKKU_QUEUE_URL", raising=False)
    assert resolve_url() == DEFAULT_URL
    assert resolve_url(None, "memory://configured") == "memory://configured"
    monkeypatch.setenv("PIKKU_QUEUE_URL", "memory://env")
    assert resolve_url(None, "memory://configured") == "memory://env"
    set_default_backend("memory://set")
    try:
        target = resolve_backend(None, "memory://configured")
        assert not isinstance(target, str) and target.url.startswith("memory://")
        assert get_default_backend("memory://configured") is target  # the client: same order
        assert resolve_url("memory://call", "memory://configured") == "memory://call"
    finally:
        set_default_backend(None)
    assert adapters.resolve_url() == "memory://env"
