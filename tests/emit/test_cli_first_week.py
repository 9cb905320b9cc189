"""A new user's first week: each mistake a newcomer makes gets a message that points at the
fix, and nothing writes where the user did not ask. Every test runs the real command (the
installed `pikkugen`, `python -m pikku_queue`, `pytest` itself) in a subprocess, on a copy of
the `basic` case."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from golden import CASES

PIKKUGEN = str(Path(sys.executable).parent / "pikkugen")


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("NO_COLOR", "FORCE_COLOR", "PIKKU_QUEUE_URL", "PYTHONPATH")
    }
    env.update(extra)
    return env


def run(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PIKKUGEN, *args], cwd=cwd, capture_output=True, text=True, env=_env(**env), timeout=120
    )


def python(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=_env(**env),
        timeout=180,
    )


@pytest.fixture
def basic(tmp_path: Path) -> Path:
    project = tmp_path / "basic"
    shutil.copytree(CASES / "basic", project, ignore=shutil.ignore_patterns("expected", "use_*"))
    return project


@pytest.fixture
def scanned(basic: Path) -> Path:
    done = run(basic, "scan", "--no-cache")
    assert done.returncode == 0, done.stderr
    return basic


# -- the memory_backend fixture is the default backend ----------------------------------------

USER_TESTS = """
from typing import Any

from basic_app.models import Email
from basic_gen.client import enqueue_cleanup_task, enqueue_email_queue_sync, queue_job_sync
from pikku_queue import JobContext
from pikku_queue.testing import run_queue_processor


def test_the_typed_client_and_queue_job_use_the_fixture(memory_backend: Any) -> None:
    handle = enqueue_email_queue_sync(Email(to="a@b.c", subject="s", body="b"))
    assert handle.backend is memory_backend
    assert queue_job_sync("cleanup-task", {}).backend is memory_backend


async def fan_out(ctx: JobContext, data: dict[str, Any]) -> str:
    return (await enqueue_cleanup_task({})).backend.url


def test_a_processor_under_run_queue_processor_enqueues_in_memory() -> None:
    assert run_queue_processor(fan_out, {}).output.startswith("memory://")
"""


def test_the_memory_backend_fixture_keeps_tests_off_the_project_queue(scanned: Path) -> None:
    (scanned / "tests").mkdir()
    (scanned / "tests" / "conftest.py").write_text('pytest_plugins = ["pikku_queue.testing"]\n')
    (scanned / "tests" / "test_jobs.py").write_text(USER_TESTS)
    done = python(
        scanned, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests", PYTHONPATH="src"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
    assert not (scanned / ".pikku").exists()
    assert not list(scanned.rglob("*.db"))


# -- sync paths carry no spurious "no running event loop" ------------------------------------

SYNC_FAILURES = """
import traceback

from pydantic import TypeAdapter

from pikku_queue.client import TypedQueue
from pikku_queue.testing import run_queue_processor


async def broken(data: dict) -> None:
    raise ValueError("the processor broke")


try:
    run_queue_processor(broken, {})
except AssertionError:
    traceback.print_exc()
import sys
print("=" * 20, file=sys.stderr, flush=True)
queue = TypedQueue("q", TypeAdapter(dict), TypeAdapter(dict))
queue.enqueue_sync({}, backend="redis://127.0.0.1:1/0")
"""


def test_sync_paths_have_no_spurious_exception_chain(tmp_path: Path) -> None:
    pytest.importorskip("redis")
    (tmp_path / "sync_failures.py").write_text(SYNC_FAILURES)
    done = python(tmp_path, "sync_failures.py")
    assert done.returncode == 1
    processor, _, connection = done.stderr.partition("=" * 20)
    assert "ValueError: the processor broke" in done.stderr
    assert "Traceback" in connection and "127.0.0.1" in connection, done.stderr
    for text in (processor, connection):
        assert "During handling of the above exception" not in text, text
        assert "no running event loop" not in text, text


# -- generate-time commands refuse outside a project ------------------------------------------


@pytest.mark.parametrize("command", ["scan", "list", "watch"])
def test_scan_list_and_watch_refuse_outside_a_project(tmp_path: Path, command: str) -> None:
    (tmp_path / "jobs.py").write_text(
        "from pikku_queue import queue_processor\n\n\n"
        '@queue_processor("q")\nasync def f(data: int) -> int:\n    return data\n'
    )
    refused = run(tmp_path, command)
    assert refused.returncode == 2
    worker = run(tmp_path, "worker")
    assert worker.returncode == 2
    message = f"error: no pyproject.toml with a [tool.pikkugen] table in {tmp_path} or any folder"
    assert refused.stderr.startswith(message), refused.stderr
    assert worker.stderr.splitlines()[0] == refused.stderr.splitlines()[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jobs.py"]


def test_explicit_paths_still_scan_outside_a_project(tmp_path: Path) -> None:
    (tmp_path / "jobs.py").write_text(
        "from pikku_queue import queue_processor\n\n\n"
        '@queue_processor("q")\nasync def f(data: int) -> int:\n    return data\n'
    )
    listed = run(tmp_path, "list", "--no-cache", "jobs.py")
    assert listed.returncode == 0, listed.stderr
    assert "1 queue processor(s)" in listed.stdout


# -- a project of one's own, scanned --------------------------------------------------------

MYAPP_JOBS = """
from pydantic import BaseModel

from pikku_queue import JobContext, NonRetryableError, queue_processor


class Invoice(BaseModel):
    number: int
    email: str


@queue_processor("invoices", dead_letter_queue="invoices-dlq")
async def send_invoice(ctx: JobContext, data: Invoice) -> str:
    if data.number < 0:
        raise NonRetryableError("negative invoice number")
    return f"sent {data.number}"
"""


@pytest.fixture
def myapp(tmp_path: Path) -> Path:
    project = tmp_path / "myapp"
    package = project / "src" / "myapp"
    package.mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        '[project]\nname = "myapp"\nversion = "0.1.0"\n\n[tool.pikkugen]\n'
    )
    (package / "__init__.py").write_text("")
    (package / "jobs.py").write_text(MYAPP_JOBS)
    done = run(project, "scan")
    assert done.returncode == 0, done.stderr
    return project


def _dead_letter(project: Path) -> str:
    """Enqueue a job that dead-letters, run a burst worker; the job id."""
    sent = run(project, "enqueue", "invoices", "--data", '{"number": -1, "email": "a@b.c"}')
    assert sent.returncode == 0, sent.stderr
    worker = run(project, "worker", "--burst")
    assert "dead_lettered=1" in worker.stdout, worker.stdout + worker.stderr
    return sent.stdout.strip()


# -- dlq: typos and wrong ids are errors -----------------------------------------------------


def test_dlq_refuses_an_unknown_queue_with_a_did_you_mean(myapp: Path) -> None:
    for command in ("list", "replay"):
        typo = run(myapp, "dlq", command, "invoice")
        assert typo.returncode == 2, typo.stdout + typo.stderr
        assert "no queue or dead-letter queue 'invoice'" in typo.stderr
        assert "did you mean 'invoices'?" in typo.stderr
    assert run(myapp, "dlq", "list", "invoices-dlq").returncode == 0


def test_dlq_replay_refuses_an_id_that_matches_nothing(myapp: Path) -> None:
    _dead_letter(myapp)
    nope = run(myapp, "dlq", "replay", "invoices", "--id", "nope")
    assert nope.returncode == 2
    assert "no dead-letter record 'nope' in invoices-dlq: --id takes a record id" in nope.stderr
    assert "replayed" not in nope.stdout
    assert "1 record(s)" in run(myapp, "dlq", "list", "invoices").stderr


def test_dlq_replay_recognises_a_job_id(myapp: Path) -> None:
    job_id = _dead_letter(myapp)
    listed = run(myapp, "dlq", "list", "invoices")
    assert f"invoices/{job_id}" in listed.stdout
    replayed = run(myapp, "dlq", "replay", "invoices", "--id", job_id)
    assert replayed.returncode == 0, replayed.stderr
    assert f"note: {job_id!r} is a job id" in replayed.stderr
    assert "replayed 1 job(s) from invoices-dlq" in replayed.stdout
    assert "0 record(s)" in run(myapp, "dlq", "list", "invoices").stderr


# -- a processor without a payload parameter -------------------------------------------------


def test_a_processor_without_a_payload_parameter_is_named_so(myapp: Path) -> None:
    jobs = myapp / "src" / "myapp" / "nightly.py"
    jobs.write_text(
        "from pikku_queue import JobContext, queue_processor\n\n\n"
        '@queue_processor("nightly")\n'
        "async def nightly(ctx: JobContext) -> None:\n"
        "    return None\n"
    )
    scanned = run(myapp, "scan")
    assert scanned.returncode == 2
    assert (
        "src/myapp/nightly.py:5:19: error[PK305]: missing payload parameter: `nightly` takes "
        "only the job context `ctx`" in scanned.stderr
    ), scanned.stderr
    assert "hint: add the payload after it" in scanned.stderr
    assert "PK702" not in scanned.stderr and "pydantic-core" not in scanned.stderr
