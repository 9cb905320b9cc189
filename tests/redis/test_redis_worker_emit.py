"""The generated `redis_worker.py`: deterministic, formatted, strictly typed, and it runs
(`python -m <out>.redis_worker --burst`) against a real redis-server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from pikku_queue.adapters.redis.backend import RedisBackend
from pikku_queue.options import ProcessorOptions
from pikku_queue.records import EnqueueRequest, JobState
from pikkugen.config import Config
from pikkugen.emit.base import HEADER_LINE
from pikkugen.generate import generate
from pikkugen.model import Location, ProcessorDecl, ScanResult, TypeRef
from redis_server import RedisServer

pytestmark = pytest.mark.redis

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent

JOBS = """
from pikku_queue import JobContext, NonRetryableError


async def double(ctx: JobContext, data: dict[str, int]) -> int:
    if data["n"] < 0:
        raise NonRetryableError("negative")
    return data["n"] * 2


def shout(data: str) -> str:
    return data.upper()
"""


def _decl(name: str, function: str, input: str, output: str, **options: object) -> ProcessorDecl:
    return ProcessorDecl(
        name=name,
        function=function,
        module=function.rpartition(".")[0],
        input=TypeRef(annotation=input),
        output=TypeRef(annotation=output),
        is_async=True,
        location=Location(path="src/app/jobs.py", line=1, column=1),
        options=ProcessorOptions.model_validate(options),
    )


def _generated_project(root: Path, services: str | None = None) -> dict[str, str]:
    (root / "src" / "app").mkdir(parents=True)
    (root / "src" / "app" / "__init__.py").write_text("")
    (root / "src" / "app" / "jobs.py").write_text(textwrap.dedent(JOBS))
    (root / "src" / "gen").mkdir()
    config = Config(
        root=root,
        paths=(root / "src" / "app",),
        out=root / "src" / "gen",
        out_package="gen",
        exclude=(),
        runtimes=("redis",),
        services=services,
        strict=False,
        backend=None,
        cache=False,
    )
    scan = ScanResult(
        processors=(
            _decl("double-it", "app.jobs.double", "dict[str, int]", "int", dead_letter_queue="dlq"),
            _decl("shout", "app.jobs.shout", "str", "str", concurrency=2),
        )
    )
    result = generate(config, scan=scan)
    assert not result.has_errors, result.diagnostics
    again = generate(config, scan=scan)
    assert again.files == result.files  # byte-for-byte deterministic
    for path, text in result.files.items():
        target = root / "src" / "gen" / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return result.files


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("redisproj")
    return root, _generated_project(root)


def test_emits_a_headed_redis_worker(project: tuple[Path, dict[str, str]]) -> None:
    _, files = project
    text = files["redis_worker.py"]
    assert text.startswith(HEADER_LINE + "\n# source: src/app\n")
    assert "from pikku_queue.runner import main" in text  # the one runner, no copy of it
    assert 'registry="gen"' in text and "python -m gen.redis_worker" in text


def test_generated_worker_is_ruff_and_mypy_strict_clean(
    project: tuple[Path, dict[str, str]],
) -> None:
    root, _ = project
    worker = root / "src" / "gen" / "redis_worker.py"
    fmt = subprocess.run(
        [VENV_BIN / "ruff", "format", "--check", "--isolated", "--line-length", "100", worker],
        capture_output=True,
        text=True,
    )
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
    lint = subprocess.run(
        [VENV_BIN / "ruff", "check", "--isolated", "--line-length", "100", worker],
        capture_output=True,
        text=True,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    env = {**os.environ, "MYPYPATH": f"{root / 'src'}{os.pathsep}{REPO / 'runtime'}"}
    typed = subprocess.run(
        [
            VENV_BIN / "mypy",
            "--strict",
            "--no-incremental",
            "--follow-imports=silent",
            "--config-file",
            os.devnull,
            "-p",
            "gen.redis_worker",
        ],
        capture_output=True,
        text=True,
        cwd=root / "src",
        env=env,
    )
    assert typed.returncode == 0, typed.stdout + typed.stderr


async def test_python_m_redis_worker_serves_every_queue(
    project: tuple[Path, dict[str, str]], redis_server: RedisServer
) -> None:
    root, _ = project
    url = f"{redis_server.url}?prefix=gen{uuid.uuid4().hex[:8]}"
    backend = RedisBackend(url)
    try:
        doubled = await backend.enqueue(EnqueueRequest("double-it", {"n": 21}))
        refused = await backend.enqueue(EnqueueRequest("double-it", {"n": -1}))
        shouted = await backend.enqueue(EnqueueRequest("shout", "hi"))
        env = {**os.environ, "PYTHONPATH": str(root / "src"), "PIKKU_QUEUE_URL": url}
        done = subprocess.run(
            [sys.executable, "-m", "gen.redis_worker", "--burst", "--log-level", "WARNING"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        info = await backend.get_job("double-it", doubled)
        assert info is not None and (info.state, info.result) == (JobState.COMPLETED, 42)
        info = await backend.get_job("shout", shouted)
        assert info is not None and info.result == "HI"
        info = await backend.get_job("double-it", refused)
        assert info is not None and info.state is JobState.DEAD_LETTERED
        [record] = await backend.dead_letters("dlq")
        assert json.dumps(record.payload) == '{"n": -1}'
    finally:
        await backend.close()


def test_a_non_redis_url_is_refused_clearly(project: tuple[Path, dict[str, str]]) -> None:
    root, _ = project
    env = {**os.environ, "PYTHONPATH": str(root / "src"), "PIKKU_QUEUE_URL": "sqlite:///x.db"}
    done = subprocess.run(
        [sys.executable, "-m", "gen.redis_worker", "--burst"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "needs a redis:// or rediss:// URL" in done.stderr


async def test_pikkugen_worker_cli_runs_on_redis(
    project: tuple[Path, dict[str, str]], redis_server: RedisServer
) -> None:
    """`pikkugen worker --backend redis://…` serves the same registry as the generated file."""
    root, _ = project
    (root / "pyproject.toml").write_text(
        '[tool.pikkugen]\npaths = ["src/app"]\nout = "src/gen"\nruntimes = ["redis"]\n'
    )
    url = f"{redis_server.url}?prefix=cli{uuid.uuid4().hex[:8]}"
    backend = RedisBackend(url)
    try:
        shouted = await backend.enqueue(EnqueueRequest("shout", "cli"))
        done = subprocess.run(
            [VENV_BIN / "pikkugen", "worker", "--backend", url, "--burst", "--queues", "shout"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "completed=1" in done.stdout
        info = await backend.get_job("shout", shouted)
        assert info is not None and info.result == "CLI"
    finally:
        await backend.close()


BROKEN_JOBS = """
raise RuntimeError("jobs module is broken")
"""

BROKEN_SERVICES = """
def create() -> object:
    raise ConnectionError("database is down")
"""


@pytest.mark.parametrize(
    ("module", "text", "expected"),
    [
        (
            "jobs.py",
            BROKEN_JOBS,
            "error: cannot load the processors: RuntimeError: jobs module is broken (",
        ),
        (
            "services.py",
            BROKEN_SERVICES,
            "error: the services factory failed: ConnectionError: database is down (",
        ),
    ],
    ids=["processor-import", "services-factory"],
)
def test_an_error_in_user_code_is_one_error_line_and_exit_2(
    tmp_path: Path, redis_server: RedisServer, module: str, text: str, expected: str
) -> None:
    """As `pikkugen worker` does: no traceback for the user's own mistake."""
    _generated_project(tmp_path, services="app.services:create")
    (tmp_path / "src" / "app" / "services.py").write_text(
        "def create() -> None:\n    return None\n"
    )
    (tmp_path / "src" / "app" / module).write_text(textwrap.dedent(text))
    url = f"{redis_server.url}?prefix=broken{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "src"), "PIKKU_QUEUE_URL": url}
    done = subprocess.run(
        [sys.executable, "-m", "gen.redis_worker", "--burst"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    # one error line (a warning, e.g. that the registry is older than jobs.py, may precede it)
    [line] = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert "Traceback" not in done.stderr
    assert line.startswith(expected), line
    assert f"{module}:" in line
