"""The `pikkugen` command behaves like the tools a user knows: `--version`,
shell completion, colour only on a terminal, help without typer's `<bool>`/`<str>`, a `list`
that fits 80 columns, one `invalid syntax`. Run as the installed console script, in
subprocesses (a pseudo-terminal where a terminal is the point)."""

from __future__ import annotations

import os
import pty
import re
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from golden import CASES

PIKKUGEN = str(Path(sys.executable).parent / "pikkugen")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env.update(extra)
    return env


def run(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PIKKUGEN, *args], cwd=cwd, capture_output=True, text=True, env=_env(**env), timeout=120
    )


@pytest.fixture
def basic(tmp_path: Path) -> Path:
    project = tmp_path / "basic"
    shutil.copytree(CASES / "basic", project, ignore=shutil.ignore_patterns("expected", "use_*"))
    return project


def test_version(tmp_path: Path) -> None:
    shown = run(tmp_path, "--version")
    assert (shown.returncode, shown.stdout) == (0, f"pikkugen {version('pikkugen')}\n")


def test_shell_completion_script_and_protocol(tmp_path: Path) -> None:
    script = run(tmp_path, "--show-completion", "bash")
    assert script.returncode == 0, script.stderr
    assert "_PIKKUGEN_COMPLETE=complete_bash" in script.stdout
    # What bash calls on <TAB>: the env var protocol the script above uses.
    completed = run(
        tmp_path, _PIKKUGEN_COMPLETE="complete_bash", COMP_WORDS="pikkugen sc", COMP_CWORD="1"
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["scan"]
    options = run(
        tmp_path,
        _PIKKUGEN_COMPLETE="complete_bash",
        COMP_WORDS="pikkugen worker --bu",
        COMP_CWORD="2",
    )
    assert options.stdout.split() == ["--burst"]


@pytest.mark.parametrize(
    "command",
    [(), ("scan",), ("list",), ("watch",), ("client",), ("worker",), ("enqueue",), ("dlq", "list")],
)
def test_help_has_no_typer_type_tags(tmp_path: Path, command: tuple[str, ...]) -> None:
    shown = run(tmp_path, *command, "--help", COLUMNS="200")
    assert shown.returncode == 0, shown.stderr
    assert "--help" in shown.stdout
    assert not re.search(r"<(bool|str|int|float|path|list\[\w+\])>", shown.stdout), shown.stdout


def _in_terminal(cwd: Path, *args: str, **env: str) -> str:
    """Output of `pikkugen ARGS` with stdout and stderr on a pseudo-terminal."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [PIKKUGEN, *args], cwd=cwd, stdout=follower, stderr=follower, env=_env(**env)
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=120)
    os.close(leader)
    return b"".join(chunks).decode()


def test_diagnostics_are_coloured_on_a_terminal_only(basic: Path) -> None:
    jobs = basic / "src" / "basic_app" / "jobs.py"
    jobs.write_text(jobs.read_text().replace('"cleanup-task"', '"cleanup task"'))
    coloured = _in_terminal(basic, "scan", "--no-cache")
    assert "\x1b[1;31merror[PK103]\x1b[0m" in coloured
    assert "error[PK103]" in ANSI.sub("", coloured)
    plain = _in_terminal(basic, "scan", "--no-cache", NO_COLOR="1")
    assert "error[PK103]" in plain and "\x1b[1;31m" not in plain
    piped = run(basic, "scan", "--no-cache")
    assert "error[PK103]" in piped.stderr and "\x1b[" not in piped.stderr


def test_list_fits_80_columns_without_nulls(basic: Path) -> None:
    jobs = basic / "src" / "basic_app" / "jobs.py"
    jobs.write_text(
        jobs.read_text().replace('"cleanup-task"', '"cleanup-task", repeat={"cron": "0 2 * * *"}')
    )
    listed = run(basic, "list", "--no-cache", COLUMNS="80")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, listed.stdout
    assert 'repeat.cron="0 2 * * *"' in listed.stdout
    assert "null" not in listed.stdout
    assert 'retry_options.backoff="exponential"' in listed.stdout


def test_a_syntax_error_says_invalid_syntax_once(basic: Path) -> None:
    (basic / "src" / "basic_app" / "broken.py").write_text(
        "from pikku_queue import queue_processor\nx = = 1\n"
    )
    scanned = run(basic, "scan", "--no-cache")
    assert scanned.returncode == 2
    assert "error[PK001]: invalid syntax" in scanned.stderr
    assert "invalid syntax: invalid syntax" not in scanned.stderr
