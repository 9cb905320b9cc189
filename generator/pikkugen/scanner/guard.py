"""What a file must pass before libcst sees it: CPython's own parser, then a nesting budget.

libcst parses and builds its tree recursively in native code: a few thousand nested brackets,
operators, lambdas or `and`s overflow the C stack (SIGSEGV) or take minutes, and Python-level
recursion over its tree fails well before that. CPython's parser refuses most such files in
milliseconds (200 nested brackets, 100 indentation levels, its own recursion limit), and it
also decides what is valid Python. What it accepts is then measured: the depth of its tree,
counting each extra operand of `a and b and ...` as a level (flat in `ast`, nested in
libcst). A file deeper than `MAX_DEPTH` is a PK006 at its deepest node, without libcst; one
deeper than `SAFE_DEPTH` is parsed in a child process when one can be forked (`pool`), so
that even a crash we did not foresee costs one diagnostic, not the scan.

The walk prunes: a node at depth d whose source spans s bytes cannot reach below d + 2·s
(every level of nesting consumes source), so short expressions are never entered.
"""

from __future__ import annotations

import ast
import io
import tokenize
from dataclasses import dataclass

from pikkugen.scanner.summary import Problem

#: Deeper than this (in `ast` levels) is refused with PK006. Typical code stays below 40;
#: libcst and the scanner's own passes were measured to cope with ~500 in every pattern.
MAX_DEPTH = 300
#: Deeper than this is parsed in a child process (when forking is possible).
SAFE_DEPTH = 100
#: A string annotation is parsed again inside the file: its own budget.
MAX_ANNOTATION_DEPTH = 100
DEEP_HINT = (
    "split the expression (intermediate names, a loop, data in a JSON file): pikkugen "
    "reads files without importing them and will not recurse this deep"
)


@dataclass(frozen=True)
class Checked:
    """A file CPython accepts and that fits the budget: its tree, reused for positions."""

    tree: ast.Module
    deep: bool  # deeper than SAFE_DEPTH: parse it in a child process
    where: tuple[int, int]  # (line, column) of the deepest node found


def check_source(text: str) -> Checked | Problem:
    """CPython's verdict on `text`, then the nesting budget; never raises on any input."""
    try:
        tree = compile(text, "<scanned>", "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
    except SyntaxError as err:  # IndentationError, "too many nested parentheses", digit limit
        return {
            "code": "PK001",
            # CPython's own message may already say it ("invalid syntax. Perhaps you forgot…")
            "message": err.msg
            if err.msg.startswith("invalid syntax")
            else f"invalid syntax: {err.msg}",
            "line": max(err.lineno or 1, 1),
            "column": max(err.offset or 1, 1),
        }
    except ValueError as err:  # NUL bytes (before 3.12), surrogates
        line, column = position_of(text, text.find("\0")) if "\0" in text else (1, 1)
        return {
            "code": "PK001",
            "message": f"invalid syntax: {err}",
            "line": line,
            "column": column,
        }
    except (RecursionError, MemoryError):
        line, column = _deepest_line(text)
        return too_deep(line, column, "Python's own parser gives up on it")
    assert isinstance(tree, ast.Module)
    depth, where = measure(tree, text, SAFE_DEPTH)
    if depth <= SAFE_DEPTH:
        return Checked(tree, False, where)
    depth, where = measure(tree, text, MAX_DEPTH)
    if depth > MAX_DEPTH:
        return too_deep(where[0], where[1], f"it nests more than {MAX_DEPTH} levels deep")
    return Checked(tree, True, where)


def check_expression(text: str) -> ast.Expression | str:
    """A string annotation's expression, or why it is not read (a short phrase)."""
    try:
        tree = compile(text, "<annotation>", "eval", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
    except SyntaxError as err:
        return f"an annotation string that Python cannot parse ({err.msg})"
    except ValueError:
        return "an annotation string that is not a valid expression"
    except (RecursionError, MemoryError):
        return "an annotation string that nests too deeply"
    assert isinstance(tree, ast.Expression)
    depth, _ = measure(tree, text, MAX_ANNOTATION_DEPTH)
    if depth > MAX_ANNOTATION_DEPTH:
        return "an annotation string that nests too deeply"
    return tree


def too_deep(line: int, column: int, why: str) -> Problem:
    return {
        "code": "PK006",
        "message": f"the file nests too deeply to analyse: {why}",
        "line": max(line, 1),
        "column": max(column, 1),
    }


def position_of(text: str, index: int) -> tuple[int, int]:
    before = text[:index]
    return before.count("\n") + 1, index - (before.rfind("\n") + 1) + 1


def measure(tree: ast.AST, text: str, limit: int) -> tuple[int, tuple[int, int]]:
    """The tree's depth and where it is reached, exact up to `limit` (beyond it, the first
    depth found past the limit; subtrees too short to pass it are not entered).

    Iterative: the tree may be as deep as CPython allows, far beyond Python's recursion."""
    starts = _line_starts(text)
    deepest = 0
    where = (1, 1)
    stack: list[tuple[ast.AST, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, ast.BoolOp):
            depth += len(node.values) - 2  # libcst nests `a and b and c` pairwise
        if depth > deepest:
            deepest = depth
            where = _where(node, where)
            if deepest > limit:
                return deepest, where
        span = _span(node, starts)
        if span is not None and depth + 2 * span <= limit:
            continue  # too short to nest beyond the limit
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, ast.expr_context):
                stack.append((child, depth + 1))
    return deepest, where


def _line_starts(text: str) -> list[int]:
    starts = [0, 0]  # 1-based line numbers; character offsets (an upper bound is enough)
    index = text.find("\n")
    while index != -1:
        starts.append(index + 1)
        index = text.find("\n", index + 1)
    return starts


def _span(node: ast.AST, starts: list[int]) -> int | None:
    """How much source `node` covers, in characters (an upper bound), or None if unknown.

    Columns are UTF-8 byte offsets: on a line with non-ASCII text they overcount, which
    only makes the pruning more careful."""
    line: int | None = getattr(node, "lineno", None)
    end: int | None = getattr(node, "end_lineno", None)
    if line is None or end is None or end >= len(starts) or line >= len(starts):
        return None
    stop = starts[end] + int(getattr(node, "end_col_offset", 0) or 0)
    begin = starts[line] + int(getattr(node, "col_offset", 0) or 0)
    return max(stop - begin, 0)


def _where(node: ast.AST, fallback: tuple[int, int]) -> tuple[int, int]:
    line = getattr(node, "lineno", None)
    if line is None:
        return fallback
    return int(line), int(getattr(node, "col_offset", 0) or 0) + 1


def _deepest_line(text: str) -> tuple[int, int]:
    """Where CPython most likely gave up: the start of the logical line with the most tokens
    (an operator chain) or, when brackets nest deeper than that, the deepest bracket. Runs
    only on files CPython refused, with the non-recursive tokenizer."""
    best_count, best_at = 0, (1, 1)
    deepest, deepest_at = 0, (1, 1)
    count, start, level = 0, (1, 1), 0
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
                if count > best_count:
                    best_count, best_at = count, start
                count = 0
                continue
            if token.type in (tokenize.NL, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT):
                continue
            if count == 0:
                start = (token.start[0], token.start[1] + 1)
            count += 1
            if token.type == tokenize.OP and token.string in "([{":
                level += 1
                if level > deepest:
                    deepest, deepest_at = level, (token.start[0], token.start[1] + 1)
            elif token.type == tokenize.OP and token.string in ")]}":
                level -= 1
    except (tokenize.TokenError, SyntaxError, ValueError):
        pass
    if count > best_count:
        best_at = start
    return deepest_at if deepest > 50 else best_at
