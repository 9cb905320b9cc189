"""The two distributions of this repository: `pikku-queue` (runtime/, pydantic only) and
`pikkugen` (the generator, depending on `pikku-queue` of the same version)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pikkugen

REPO = Path(__file__).resolve().parents[1]
TOP = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
RUNTIME = tomllib.loads((REPO / "runtime" / "pyproject.toml").read_text(encoding="utf-8"))


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match is not None
    return match[0].lower()


def test_the_runtime_needs_pydantic_only() -> None:
    project = RUNTIME["project"]
    assert project["name"] == "pikku-queue"
    assert [_name(r) for r in project["dependencies"]] == ["pydantic"]
    assert {"redis", "sqs"} <= set(project["optional-dependencies"])
    assert [_name(r) for r in project["optional-dependencies"]["sqs"]] == ["boto3"]
    assert {"bullmq", "redis"} <= {_name(r) for r in project["optional-dependencies"]["redis"]}
    assert RUNTIME["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["pikku_queue"]


def test_pikkugen_depends_on_the_runtime_of_its_own_version() -> None:
    project = TOP["project"]
    version = project["version"]
    assert version == RUNTIME["project"]["version"] == pikkugen.__version__
    assert f"pikku-queue=={version}" in project["dependencies"]
    extras = project["optional-dependencies"]
    for extra in RUNTIME["project"]["optional-dependencies"]:
        # each runtime extra is reachable through pikkugen's extra of the same name
        assert extras[extra] == [f"pikku-queue[{extra}]=={version}"], extra
    packages = TOP["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    assert packages == ["generator/pikkugen"]  # the runtime ships in its own wheel only


def test_the_install_scripts_install_the_runtime_from_this_clone() -> None:
    for script in ("test", "demo"):
        text = (REPO / "scripts" / script).read_text(encoding="utf-8")
        [line] = [line for line in text.splitlines() if "pip install -q -e" in line]
        assert "-e ./runtime -e " in line, line  # one pip command: no PyPI look-up for it
