"""Line and column of the nodes the scanner reports on, without libcst's whole-file pass.

libcst's PositionProvider records every node of the file (about twice the cost of parsing it,
measured). The scanner needs positions inside some top-level statements only, so it puts
those statements (function bodies replaced by a stub when nothing inside them is needed) into
one small module, runs the provider on that, and shifts each statement's nodes by the
difference between its first line there and in the real file (counted by a plain codegen).
"""

from __future__ import annotations

import ast
import re
from bisect import bisect_right
from collections.abc import Sequence

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

_NEWLINE = re.compile(r"\r\n?|\n")
#: What a module body holds.
Statement = cst.SimpleStatementLine | cst.BaseCompoundStatement


def first_lines(module: cst.Module, upto: int) -> list[int]:
    """1-based first line (leading comments and blank lines included) of the first `upto`
    top-level statements of `module`."""
    line = 1 + len(module.header)
    lines: list[int] = []
    for statement in module.body[:upto]:
        lines.append(line)
        line += len(_NEWLINE.findall(module.code_for_node(statement)))
    return lines


def first_lines_from_ast(module: cst.Module, tree: ast.Module, upto: int) -> list[int] | None:
    """The same as `first_lines`, from CPython's tree of the same text (about 4x cheaper than
    a codegen): a statement starts `len(leading_lines)` lines before its first token. None
    when the two parsers disagree on the statements."""
    lines: list[int] = []
    cursor = 0
    for statement in module.body[:upto]:
        if cursor >= len(tree.body):
            return None
        node = tree.body[cursor]
        first = node.lineno
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            first = min([first, *(d.lineno for d in node.decorator_list)])
        lines.append(first - len(statement.leading_lines))
        cursor += len(statement.body) if isinstance(statement, cst.SimpleStatementLine) else 1
    return lines


def positions(
    module: cst.Module, statements: Sequence[tuple[int, Statement]]
) -> dict[cst.CSTNode, list[int]]:
    """Positions ([line, column], both 1-based) of every node inside the given statements,
    each paired with its first line in `module`; they must come in file order."""
    if not statements:
        return {}
    mini = cst.Module(
        body=[statement for _, statement in statements],
        header=[],
        footer=[],
        default_indent=module.default_indent,
        default_newline=module.default_newline,
    )
    starts = first_lines(mini, len(statements))
    shifts = [real - start for (real, _), start in zip(statements, starts, strict=True)]
    found: dict[cst.CSTNode, list[int]] = {}
    ranges = MetadataWrapper(mini, unsafe_skip_copy=True).resolve(PositionProvider)
    for node, code_range in ranges.items():
        start = code_range.start
        which = bisect_right(starts, start.line) - 1
        found[node] = [start.line + shifts[max(which, 0)], start.column + 1]
    return found
