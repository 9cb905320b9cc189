"""Line breaking for the type expressions generated code holds, the way `ruff format` breaks
them, so a long annotation (a `Literal` of many values, a deep generic, a long queue name)
still gives output that `ruff format --check` accepts.

The rule, for the expressions IR annotations can hold: an expression that fits on its line
stays flat; otherwise its outermost brackets open, each element goes on its own line one
level deeper (with a trailing comma when there are several), and each element is laid out by
the same rule, unless all of them fit together on that one line; a too long `a | b` puts
each operand on its own line. Names, attributes and
strings never break (ruff leaves them long).
"""

from __future__ import annotations

import ast
import unicodedata

from pikkugen.emit.base import INDENT, string_literal

LINE_LENGTH = 88


def width(text: str) -> int:
    """Columns `text` takes as ruff counts them: East Asian wide characters and most emoji
    take two, combining marks and format characters none."""
    if text.isascii():
        return len(text)
    total = 0
    for char in text:
        if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
            continue
        total += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return total


def flat(node: ast.expr) -> str:
    """`node` on one line, strings quoted as ruff quotes them."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{flat(node.value)}.{node.attr}"
    if isinstance(node, ast.Subscript):
        items, _ = _elements(node.slice)
        return f"{flat(node.value)}[{', '.join(flat(i) for i in items)}]"
    if isinstance(node, ast.Call) and not node.keywords:
        return f"{flat(node.func)}({', '.join(flat(a) for a in node.args)})"
    if isinstance(node, ast.Constant):
        if isinstance(node.value, str):
            return string_literal(node.value)
        return "..." if node.value is Ellipsis else repr(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return f"-{flat(node.operand)}"
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return " | ".join(flat(o) for o in _operands(node))
    if isinstance(node, ast.List):
        return f"[{', '.join(flat(e) for e in node.elts)}]"
    if isinstance(node, ast.Tuple):
        if len(node.elts) == 1:
            return f"({flat(node.elts[0])},)"
        return f"({', '.join(flat(e) for e in node.elts)})"
    # nothing the scanner writes into the IR; still valid Python, if not ruff's exact quotes
    return ast.unparse(node)


def fit(text: str, *, indent: int, before: int, after: int) -> str:
    """`text` (a Python expression) laid out to start `before` characters into a line whose
    block is `indent` levels deep, with `after` characters following its last line."""
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError:
        return text
    return _fit(node, indent, before, after)


def _fit(node: ast.expr, indent: int, before: int, after: int) -> str:
    one_line = flat(node)
    if before + width(one_line) + after <= LINE_LENGTH:
        return one_line
    closing = INDENT * indent
    if isinstance(node, ast.Subscript):
        items, several = _elements(node.slice)
        return f"{flat(node.value)}[\n{_block(items, several, indent)}{closing}]"
    if isinstance(node, ast.Call) and not node.keywords:
        several = len(node.args) > 1
        return f"{flat(node.func)}(\n{_block(node.args, several, indent)}{closing})"
    if isinstance(node, ast.List) and node.elts:
        return f"[\n{_block(node.elts, True, indent)}{closing}]"
    if isinstance(node, ast.Tuple) and len(node.elts) == 1:  # the comma makes it a tuple
        inner = INDENT * (indent + 1)
        item = _fit(node.elts[0], indent + 1, len(inner), 1)
        return f"(\n{inner}{item},\n{closing})"
    if isinstance(node, ast.Tuple) and node.elts:
        return f"(\n{_block(node.elts, True, indent)}{closing})"
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        operands = _operands(node)
        lines = [_fit(operands[0], indent, before, 0)]
        for i, operand in enumerate(operands[1:], start=1):
            tail = after if i == len(operands) - 1 else 0
            lines.append(f"{closing}| {_fit(operand, indent, len(closing) + 2, tail)}")
        return "\n".join(lines)
    return one_line


def _block(items: list[ast.expr], several: bool, indent: int) -> str:
    """The inside of opened brackets: all elements on one line when they fit there, else one
    element per line with a trailing comma (a lone element: alone, laid out in turn)."""
    inner = INDENT * (indent + 1)
    if several:
        together = ", ".join(flat(item) for item in items)
        if len(inner) + width(together) <= LINE_LENGTH:
            return f"{inner}{together}\n"
    comma = "," if several else ""
    return "".join(
        f"{inner}{_fit(item, indent + 1, len(inner), len(comma))}{comma}\n" for item in items
    )


def _elements(index: ast.expr) -> tuple[list[ast.expr], bool]:
    """A subscript's elements, and whether there are several (then each gets a comma)."""
    if isinstance(index, ast.Tuple) and len(index.elts) != 1:
        return list(index.elts), len(index.elts) > 1
    return [index], False


def _operands(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return [*_operands(node.left), *_operands(node.right)]
    return [node]
