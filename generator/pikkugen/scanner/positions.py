"""Line and column of the nodes the scanner reports on, without libcst's whole-file pass.

libcst's PositionProvider records every node of the file (about twice the cost of parsing it,
RESEARCH.md). The scanner needs positions inside a few top-level statements only, so it counts
lines per top-level statement (a plain codegen) and runs the provider on a one-statement module
for each statement it cares about, shifting the result by the statement's first line. Large
function bodies are replaced by a stub first when nothing inside them is needed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

_NEWLINE = re.compile(r"\r\n?|\n")
#: What a module body holds.
Statement = cst.SimpleStatementLine | cst.BaseCompoundStatement


def first_lines(module: cst.Module, upto: int) -> list[int]:
    """1-based first line (leading comments and blank lines included) of the first `upto`
    top-level statements."""
    line = 1 + len(module.header)
    lines: list[int] = []
    for statement in module.body[:upto]:
        lines.append(line)
        line += len(_NEWLINE.findall(module.code_for_node(statement)))
    return lines


def positions(
    module: cst.Module,
    statements: Iterable[tuple[int, Statement]],
) -> dict[cst.CSTNode, list[int]]:
    """Positions ([line, column], both 1-based) of every node inside the given statements.

    `statements` pairs each statement with the first line of the top-level statement it was
    taken from (a stubbed function keeps its header, so the shift is the same)."""
    found: dict[cst.CSTNode, list[int]] = {}
    for first_line, statement in statements:
        mini = cst.Module(
            body=[statement],
            header=[],
            footer=[],
            default_indent=module.default_indent,
            default_newline=module.default_newline,
        )
        ranges = MetadataWrapper(mini, unsafe_skip_copy=True).resolve(PositionProvider)
        for node, code_range in ranges.items():
            start = code_range.start
            found[node] = [first_line + start.line - 1, start.column + 1]
    return found
