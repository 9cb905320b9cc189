"""`.pre-commit-hooks.yaml`: the `pikkugen-check` hook, run by the real `pre-commit` package
(`pre-commit try-repo`) on a user's temporary git repository. The hook repository is a
temporary git repository holding this checkout's hook file, committed (try-repo reads a
repository at a revision); the hook is `language: system`, so no network is needed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from golden import CASES

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.skipif(
    not (BIN / "pre-commit").exists(), reason="pre-commit is a dev extra: pip install -e '.[dev]'"
)


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        PRE_COMMIT_HOME=str(tmp_path / "pre-commit-home"),
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.invalid",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.invalid",
        GIT_CONFIG_NOSYSTEM="1",
        HOME=str(tmp_path),
        NO_COLOR="1",
    )
    return env


def git(cwd: Path, env: dict[str, str], *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, timeout=60)


def test_the_hook_passes_a_current_package_and_fails_a_stale_one(tmp_path: Path) -> None:
    env = _env(tmp_path)
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    shutil.copy(ROOT / ".pre-commit-hooks.yaml", hooks / ".pre-commit-hooks.yaml")
    git(hooks, env, "init", "-q")
    git(hooks, env, "add", ".pre-commit-hooks.yaml")
    git(hooks, env, "commit", "-q", "-m", "hooks")

    project = tmp_path / "project"
    shutil.copytree(CASES / "basic", project, ignore=shutil.ignore_patterns("expected", "use_*"))
    subprocess.run([BIN / "pikkugen", "scan"], cwd=project, env=env, check=True, timeout=120)
    git(project, env, "init", "-q")
    git(project, env, "add", ".")

    def try_repo() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [BIN / "pre-commit", "try-repo", str(hooks), "pikkugen-check", "--all-files"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    current = try_repo()
    assert current.returncode == 0, current.stdout + current.stderr
    assert "pikkugen scan --check" in current.stdout and "Passed" in current.stdout

    jobs = project / "src" / "basic_app" / "jobs.py"
    jobs.write_text(jobs.read_text().replace("concurrency=5", "concurrency=6"))
    git(project, env, "add", ".")
    stale = try_repo()
    assert stale.returncode == 1, stale.stdout + stale.stderr
    assert "Failed" in stale.stdout and "are stale" in stale.stdout
