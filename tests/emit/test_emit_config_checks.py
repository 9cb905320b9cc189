"""`[tool.pikkugen]` values checked at generate time: a misspelled services factory (it used to
fail only at worker start) and a backend URL carrying a secret (it was baked into the
generated registry without a word)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pikkugen.config import load_config
from pikkugen.config_checks import check_config

CLI = [sys.executable, "-c", "from pikkugen.cli import main; main()"]
SERVICES = """\
from pikku_queue import Services


def create_services() -> Services:
    return Services()


class Settings: ...
"""
JOBS = """\
from pikku_queue import queue_processor


@queue_processor("q")
async def handle(data: int) -> int:
    return data
"""


def project(root: Path, extra: str, services: str = SERVICES) -> Path:
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "x"\n\n[tool.pikkugen]\npaths = ["src"]\n{extra}\n'
    )
    package = root / "src" / "myapp"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "services.py").write_text(services)
    (package / "jobs.py").write_text(JOBS)
    return root


def found(root: Path) -> list[tuple[str, str, str | None, int | None, int | None]]:
    return [(d.level, d.code, d.path, d.line, d.column) for d in check_config(load_config(root))]


def test_a_misspelled_factory_is_an_error_with_a_did_you_mean(tmp_path: Path) -> None:
    root = project(tmp_path, 'services = "myapp.services:create_servicez"')
    (d,) = check_config(load_config(root))
    assert (d.level, d.code, d.path, d.line, d.column) == (
        "error",
        "PK602",
        "pyproject.toml",
        6,
        12,
    )
    assert d.message == (
        "services factory `create_servicez` is not defined at the top level of `myapp.services` "
        "(src/myapp/services.py); the worker would fail at start"
    )
    assert d.hint is not None and d.hint.startswith(
        "did you mean 'myapp.services:create_services'?"
    )


def test_scan_fails_on_it_and_writes_nothing(tmp_path: Path) -> None:
    root = project(tmp_path, 'services = "myapp.services:create_servicez"')
    proc = subprocess.run(
        [*CLI, "scan", "--no-cache"], cwd=root, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2, proc.stderr
    assert "pyproject.toml:6:12: error[PK602]: services factory `create_servicez`" in proc.stderr
    assert not (root / "src" / "pikku_generated").exists()


@pytest.mark.parametrize(
    "services",
    [
        SERVICES,
        "from myapp.factory import build as create_services\n",
        "import os\nif os.environ.get('X'):\n    def create_services(): ...\nelse:\n"
        "    create_services = None\n",
        "try:\n    from fast import create_services\nexcept ImportError:\n"
        "    from slow import create_services\n",
        "from myapp.factory import *\n",  # cannot be known: not reported
        "def __getattr__(name): ...\n",  # nor this
    ],
)
def test_a_factory_bound_at_module_level_passes(tmp_path: Path, services: str) -> None:
    root = project(tmp_path, 'services = "myapp.services:create_services"', services)
    assert found(root) == []


def test_a_module_python_warns_about_is_still_checked(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """`'\\d'` makes CPython warn (an error under -W error): not a reason to skip the check."""
    services = SERVICES + "PATTERN = '\\d'\n"
    root = project(tmp_path, 'services = "myapp.services:create_servicez"', services)
    assert [code for _, code, *_ in found(root)] == ["PK602"]
    assert capfd.readouterr().err == ""


def test_a_package_module_is_found_by_its_init(tmp_path: Path) -> None:
    root = project(tmp_path, 'services = "myapp.wiring:create_services"')
    (root / "src" / "myapp" / "wiring").mkdir()
    (root / "src" / "myapp" / "wiring" / "__init__.py").write_text(SERVICES)
    assert found(root) == []


def test_a_module_outside_the_scanned_paths_is_a_warning_with_a_guess(tmp_path: Path) -> None:
    root = project(tmp_path, 'services = "myapp.servics:create_services"')
    (d,) = check_config(load_config(root))
    assert (d.level, d.code, d.line) == ("warning", "PK603", 6)
    assert "`myapp.servics` is not under the scanned paths (src)" in d.message
    assert d.hint is not None and d.hint.startswith(
        "did you mean 'myapp.services:create_services'?"
    )


SECRET = "S3cr3tValue"


@pytest.mark.parametrize(
    "url",
    [
        f"redis://:{SECRET}@localhost:6379/0",
        f"redis://user:{SECRET}@localhost/0",
        f"redis://{SECRET}@localhost/0",
        f"redis://localhost/0?password={SECRET}",
        f"sqs://?region=eu-west-1&access_key=AKIA&secret_key={SECRET}",
        f"sqs://?endpoint=http://127.0.0.1:5000&token={SECRET}",
    ],
)
def test_a_backend_url_with_a_secret_is_a_warning_that_does_not_repeat_it(
    tmp_path: Path, url: str
) -> None:
    root = project(tmp_path, f'backend = "{url}"')
    (d,) = check_config(load_config(root))
    assert (d.level, d.code, d.path, d.line) == ("warning", "PK604", "pyproject.toml", 6)
    assert SECRET not in d.message and SECRET not in (d.hint or "")
    assert "***" in d.message
    assert d.hint is not None and "$PIKKU_QUEUE_URL" in d.hint


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///.pikku/queue.db",
        "redis://localhost:6379/0",
        "sqs://?region=eu-west-1&endpoint_url=http://127.0.0.1:5000&prefix=app-",
        "redis://localhost:6379/0?prefix=app&remove_on_complete=100&socket_timeout=5",
        "sqlite:///.pikku/queue.db?remove_on_fail=age:3600,count:10",
    ],
)
def test_a_backend_url_without_secrets_is_silent(tmp_path: Path, url: str) -> None:
    root = project(tmp_path, f'backend = "{url}"')
    assert found(root) == []


def test_scan_prints_the_warning_once_and_still_writes(tmp_path: Path) -> None:
    root = project(tmp_path, f'backend = "redis://:{SECRET}@localhost:6379/0"')
    proc = subprocess.run(
        [*CLI, "scan", "--no-cache"], cwd=root, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("warning[PK604]") == 1
    assert SECRET not in proc.stderr and SECRET not in proc.stdout
