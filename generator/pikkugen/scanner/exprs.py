"""libcst expression → `Expr` JSON tree (see `summary`), without evaluating anything.

Conversion is purely syntactic: whether a name is a constant, a pikku_queue class or a type is
decided at link time, when other modules are known. Anything that is not literal-shaped becomes
a `bad` node that says what it was, so the diagnostic can name it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

import libcst as cst

from pikkugen.scanner.guard import check_expression
from pikkugen.scanner.summary import Expr

PosOf = Callable[[cst.CSTNode], list[int]]

_BINOPS: dict[type[cst.BaseBinaryOp], str] = {
    cst.Add: "+",
    cst.Subtract: "-",
    cst.Multiply: "*",
    cst.FloorDivide: "//",
    cst.Modulo: "%",
    cst.BitOr: "|",
}

_WHAT: dict[type[cst.CSTNode], str] = {
    cst.FormattedString: "an f-string",
    cst.Lambda: "a lambda",
    cst.ListComp: "a comprehension",
    cst.SetComp: "a comprehension",
    cst.DictComp: "a comprehension",
    cst.GeneratorExp: "a generator expression",
    cst.IfExp: "a conditional expression",
    cst.Await: "an await expression",
    cst.NamedExpr: "an assignment expression",
    cst.Comparison: "a comparison",
    cst.BooleanOperation: "a boolean operation",
    cst.Imaginary: "a complex number",
    cst.Yield: "a yield expression",
}


def identifier(name: cst.Name) -> str:
    """The name Python binds for an identifier as written: its NFKC form (PEP 3131), so
    `ｗork` (full-width) is `work`, as the worker that imports it will see it. libcst keeps
    the spelling of the source; every name the scanner reads goes through here."""
    value = name.value
    return value if value.isascii() else unicodedata.normalize("NFKC", value)


def dotted(node: cst.BaseExpression) -> list[str] | None:
    """`a.b.c` → ["a", "b", "c"]; None for anything that is not a plain dotted name."""
    parts: list[str] = []
    while isinstance(node, cst.Attribute):
        parts.append(identifier(node.attr))
        node = node.value
    if not isinstance(node, cst.Name):
        return None
    parts.append(identifier(node))
    parts.reverse()
    return parts


def _bad(what: str, pos: list[int]) -> Expr:
    return {"k": "bad", "what": what, "p": pos}


def convert(node: cst.BaseExpression, pos_of: PosOf, *, annotation: bool = False) -> Expr:
    """Convert one expression. In annotations, string constants also carry their parsed form
    (`ann`) because a string there is a forward reference unless it sits inside `Literal`."""
    pos = pos_of(node)
    if isinstance(node, cst.Name):
        name = identifier(node)
        if name in ("True", "False", "None"):
            return {"k": "const", "v": {"True": True, "False": False, "None": None}[name], "p": pos}
        return {"k": "name", "parts": [name], "p": pos}
    if isinstance(node, cst.Attribute):
        parts = dotted(node)
        return (
            {"k": "name", "parts": parts, "p": pos}
            if parts
            else _bad("an attribute of an expression", pos)
        )
    if isinstance(node, cst.Integer | cst.Float):
        try:
            number = node.evaluated_value
        except (ValueError, SyntaxError):  # more digits than int() converts; literal_eval
            return _bad("a number too large to read", pos)  # raises SyntaxError on 3.11
        if isinstance(number, int) and number.bit_length() > 256:
            return _bad("a number too large to be an option", pos)
        return {"k": "const", "v": number, "p": pos}
    if isinstance(node, cst.SimpleString | cst.ConcatenatedString):
        value = node.evaluated_value
        if value is None:
            return _bad("an f-string", pos)
        if isinstance(value, bytes):
            return _bad("a bytes literal", pos)
        out: Expr = {"k": "const", "v": value, "p": pos}
        if annotation:
            out["ann"] = _parse_string_annotation(value, pos)
        return out
    if isinstance(node, cst.UnaryOperation):
        if isinstance(node.operator, cst.Minus | cst.Plus):
            operand = convert(node.expression, pos_of, annotation=annotation)
            op = "-" if isinstance(node.operator, cst.Minus) else "+"
            return {"k": "unary", "op": op, "operand": operand, "p": pos}
        return _bad("a unary operation", pos)
    if isinstance(node, cst.BinaryOperation):
        binop = _BINOPS.get(type(node.operator))
        if binop is None:
            return _bad("an arithmetic expression", pos)
        return {
            "k": "binop",
            "op": binop,
            "left": convert(node.left, pos_of, annotation=annotation),
            "right": convert(node.right, pos_of, annotation=annotation),
            "p": pos,
        }
    if isinstance(node, cst.List | cst.Tuple | cst.Set):
        kind = (
            "list"
            if isinstance(node, cst.List)
            else "tuple"
            if isinstance(node, cst.Tuple)
            else "set"
        )
        items: list[Expr] = []
        for element in node.elements:
            if isinstance(element, cst.StarredElement):
                return _bad("a starred element", pos)
            items.append(convert(element.value, pos_of, annotation=annotation))
        return {"k": kind, "items": items, "p": pos}
    if isinstance(node, cst.Dict):
        entries: list[Expr] = []
        for entry in node.elements:
            if not isinstance(entry, cst.DictElement):
                return _bad("a ** expansion", pos)
            entries.append(
                {"key": convert(entry.key, pos_of), "value": convert(entry.value, pos_of)}
            )
        return {"k": "dict", "items": entries, "p": pos}
    if isinstance(node, cst.Call):
        return convert_call(node, pos_of)
    if isinstance(node, cst.Subscript):
        slices: list[Expr] = []
        for subscript in node.slice:
            index = subscript.slice
            if not isinstance(index, cst.Index) or index.star is not None:
                return _bad("a slice", pos)
            slices.append(convert(index.value, pos_of, annotation=annotation))
        return {
            "k": "sub",
            "value": convert(node.value, pos_of, annotation=annotation),
            "items": slices,
            "p": pos,
        }
    if isinstance(node, cst.Ellipsis):
        return {"k": "ellipsis", "p": pos}
    return _bad(_WHAT.get(type(node), "an expression that is not a literal"), pos)


def convert_call(node: cst.Call, pos_of: PosOf) -> Expr:
    pos = pos_of(node)
    func = dotted(node.func)
    if func is None:
        return _bad("a call of an expression", pos)
    args: list[Expr] = []
    kwargs: list[Expr] = []
    for arg in node.args:
        if arg.star:
            # kept as a call (with its name) so a declaration is still recognised and the
            # unpacking reported there, not silently taken for some other call
            return {"k": "call", "func": func, "args": [], "kwargs": [], "p": pos, "star": True}
        if arg.keyword is None:
            args.append(convert(arg.value, pos_of))
        else:
            kwargs.append(
                {
                    "name": identifier(arg.keyword),
                    "value": convert(arg.value, pos_of),
                    "p": pos_of(arg),
                }
            )
    return {"k": "call", "func": func, "args": args, "kwargs": kwargs, "p": pos}


def _parse_string_annotation(text: str, pos: list[int]) -> Expr:
    """A string annotation is parsed as an expression; its nodes take the string's position.
    CPython's parser and the nesting budget see it first (`guard`): libcst recurses natively,
    and `"list[" * 5000` inside a string is invisible to the check of the file itself."""
    checked = check_expression(text.strip())
    if isinstance(checked, str):
        return _bad(checked, pos)
    try:
        parsed = cst.parse_expression(text.strip())
    except RecursionError:
        return _bad("an annotation string that nests too deeply", pos)
    except Exception:  # libcst raises ParserSyntaxError and a few internal errors on garbage
        return _bad("an annotation string that is not a valid expression", pos)
    return convert(parsed, lambda _node: pos, annotation=True)
