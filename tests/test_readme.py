"""The README is part of the product: its generated parts must match the code."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

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
