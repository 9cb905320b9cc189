"""The README is part of the product: its generated parts must match the code."""

from __future__ import annotations

import re
from pathlib import Path

from pikkugen.cli import app
from pikkugen.support_table import replace_block

README = Path(__file__).resolve().parents[1] / "README.md"


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


def test_every_cli_command_is_documented() -> None:
    text = README.read_text(encoding="utf-8")
    names = [c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands]
    names += [g.name or "" for g in app.registered_groups]
    assert names, "the CLI registers no commands"
    for name in names:
        assert f"pikkugen {name}" in text, name
