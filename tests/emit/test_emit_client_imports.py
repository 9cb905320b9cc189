"""The client imports what it uses and nothing else: with one queue `Any` is used only when
that queue's types name it (pyflakes' F401 on generated code)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from emit_support import config_for, decl, scan_of
from pikkugen.emit.base import EmitInput
from pikkugen.emit.client import emit


def typing_imports(*decls: object) -> set[str]:
    data = EmitInput(config=config_for(Path("/p")), scan=scan_of(*decls), schemas={})  # type: ignore[arg-type]
    tree = ast.parse(emit(data)["client.py"])
    return {
        alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module == "typing"
        for alias in node.names
    }


@pytest.mark.parametrize(
    ("queues", "expected"),
    [
        ([], {"Any", "Never"}),
        ([decl("a")], {"Literal"}),
        ([decl("a", input="dict[str, typing.Any]", modules=("typing",))], {"Any", "Literal"}),
        ([decl("a", output="list[typing.Any]", modules=("typing",))], {"Any", "Literal"}),
        ([decl("a"), decl("b")], {"Any", "Literal", "overload"}),
    ],
)
def test_typing_names_are_imported_only_when_used(queues: list[object], expected: set[str]) -> None:
    assert typing_imports(*queues) == expected
