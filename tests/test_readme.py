"""The README is part of the product: its generated parts must match the code."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from pikkugen.cli import app
from pikkugen.support_table import replace_block

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CLI_DOC = ROOT / "docs" / "cli.md"


def test_support_table_is_rendered_from_the_capabilities() -> None:
    text = README.read_text(encoding="utf-8")
    assert replace_block(text) == text, "run: python -m pikkugen.support_table README.md"


def test_quick_start_has_exactly_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None
    commands = [line for line in block.group(1).splitlines() if line and not line.startswith(" ")]
    assert [c.split("#")[0].strip() for c in commands] == ["bash scripts/demo", "bash scripts/test"]


def _command_paths(command: Any, prefix: str = "pikkugen") -> list[str]:
    """`pikkugen scan`, …, `pikkugen dlq`, `pikkugen dlq list`, …: every command and subcommand."""
    paths = []
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        paths.append(f"{prefix} {name}")
        paths += _command_paths(sub, f"{prefix} {name}")
    return paths


def test_every_cli_command_is_documented() -> None:
    text = README.read_text(encoding="utf-8") + CLI_DOC.read_text(encoding="utf-8")
    paths = _command_paths(typer.main.get_command(app))
    assert paths, "the CLI registers no commands"
    for path in paths:
        assert path in text, f"{path} is in neither the README nor docs/cli.md"


# -- the first-contact path runs as written ---------------------------------------------------

GETTING_STARTED = ROOT / "docs" / "getting-started.md"
#: A fenced block, with `file=PATH` when it is a file the reader creates.
BLOCK = re.compile(r"^```(\w+)(?: file=(\S+))?\n(.*?)^```", re.S | re.M)
PIKKUGEN = str(Path(sys.executable).parent / "pikkugen")


def _clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PIKKU_QUEUE_URL", "PYTHONPATH", "VIRTUAL_ENV", "NO_COLOR", "FORCE_COLOR")
    }
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(extra)
    return env


def _page_as_script(page: Path) -> str:
    """The page's shell blocks verbatim and its `file=` blocks as the files the reader writes,
    in page order, as one bash script; `/path/to/pikkugen` is this clone."""
    lines = ["set -euo pipefail"]
    for language, path, body in BLOCK.findall(page.read_text(encoding="utf-8")):
        if path:
            lines += [f"mkdir -p \"$(dirname '{path}')\"", f"cat > '{path}' <<'PIKKU_EOF'"]
            lines += [body.rstrip("\n"), "PIKKU_EOF"]
        elif language == "sh":
            lines.append(body.replace("/path/to/pikkugen", str(ROOT)))
    return "\n".join(lines) + "\n"


def test_the_getting_started_page_has_the_whole_path() -> None:
    script = _page_as_script(GETTING_STARTED)
    for step in ("python3 -m venv .venv", "pikkugen scan", "pikkugen worker --burst", "pytest"):
        assert step in script, step
    assert "cat > 'pyproject.toml'" in script and "[tool.pikkugen]" in script


@pytest.mark.slow
def test_the_getting_started_page_runs_verbatim_from_an_empty_folder(tmp_path: Path) -> None:
    folder = tmp_path / "myapp"
    folder.mkdir()
    script = tmp_path / "getting-started.sh"
    script.write_text(_page_as_script(GETTING_STARTED))
    done = subprocess.run(
        ["bash", str(script)],
        cwd=folder,
        capture_output=True,
        text=True,
        env=_clean_env(),
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert re.search(r"^enqueued [0-9a-f]{32}$", done.stdout, re.M), done.stdout
    assert "worker done: completed=1" in done.stdout
    assert "invoices: completed=1 waiting=0" in done.stdout
    assert "2 passed" in done.stdout
    assert (folder / ".pikku" / "queue.db").is_file()
    assert not (folder / "src" / ".pikku").exists()


def _readme_block(after: str) -> str:
    section = README.read_text(encoding="utf-8").split(after, 1)[1]
    match = BLOCK.search(section)
    assert match is not None
    return match.group(3)


def test_the_readme_testing_snippet_defines_its_names_and_passes(tmp_path: Path) -> None:
    (tmp_path / "test_snippet.py").write_text(_readme_block("**5. Test the processor**"))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_snippet.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=_clean_env(PYTHONPATH=str(ROOT / "examples" / "shop" / "src")),
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def test_the_queue_monitor_snippet_reads_the_projects_backend(tmp_path: Path) -> None:
    shop = tmp_path / "shop"
    shutil.copytree(ROOT / "examples" / "shop", shop, ignore=shutil.ignore_patterns(".pikku"))
    env = _clean_env()
    data = '{"to": "a@b.c", "subject": "s", "body": "b"}'
    sent = subprocess.run(
        [PIKKUGEN, "enqueue", "email-queue", "--data", data],
        cwd=shop,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert sent.returncode == 0, sent.stderr
    observability = ROOT / "docs" / "observability.md"
    snippet = BLOCK.search(observability.read_text(encoding="utf-8").split("## QueueMonitor")[1])
    assert snippet is not None
    (shop / "snippet.py").write_text(snippet.group(3))
    shown = subprocess.run(
        [sys.executable, "snippet.py"],
        cwd=shop,
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": "src"},
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split()[0] == "1", shown.stdout  # the waiting email
    assert not (shop / ".pikku" / "queue.db").exists()
