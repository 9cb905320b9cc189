"""Evaluate option expressions as literals, following module-level constants across the tree.

The result keeps the position of every part (`Val.children`), so a validation error on
`retry_options.attempts` can point at the `attempts` keyword or dict key it came from.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import astuple, dataclass, field
from typing import Any

from pikkugen.model import Diagnostic
from pikkugen.scanner.codes import LITERAL_HINT, diagnostic
from pikkugen.scanner.link import Tree, pikku_kind
from pikkugen.scanner.summary import Expr

#: Calls read as keyword dictionaries: the runtime's option classes (and `dict(...)`).
OPTION_CLASSES = frozenset({"RetryOptions", "BatchOptions", "Repeat", "RateLimit", "Dedupe"})
_MAX_DEPTH = 64
_MAX_STRING = 10_000
_MAX_BITS = 256
_NUMERIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "//": operator.floordiv,
    "%": operator.mod,
}


@dataclass(frozen=True)
class Place:
    path: str
    line: int
    column: int


@dataclass
class Val:
    value: Any
    place: Place
    children: dict[str | int, Val] = field(default_factory=dict)


class NotLiteral(Exception):
    """Carries the diagnostic for an expression that cannot be read statically; `through`
    is set once it has been re-raised at the use of a constant whose value is the culprit."""

    def __init__(self, problem: Diagnostic, through: bool = False) -> None:
        super().__init__(problem.message)
        self.problem = problem
        self.through = through


#: The hint for a constant whose own value is not a literal: "move the value into a
#: module-level constant" would point at what the user already did.
CONSTANT_HINT = (
    "pikkugen reads options without running your code, so the value must be written out: "
    "a literal (`concurrency=4`) or a constant assigned a literal (`WORKERS = 4`)"
)


class Evaluator:
    def __init__(self, tree: Tree) -> None:
        self.tree = tree

    def place(self, module: str, expr: Expr) -> Place:
        file = self.tree.files.get(module)
        pos = expr.get("p") or [1, 1]
        return Place(file.rel if file is not None else module, int(pos[0]), int(pos[1]))

    def _fail(
        self, code: str, message: str, place: Place, hint: str | None = LITERAL_HINT
    ) -> NotLiteral:
        return NotLiteral(
            diagnostic(
                code, message, path=place.path, line=place.line, column=place.column, hint=hint
            )
        )

    def evaluate(self, module: str, expr: Expr, stack: tuple[tuple[str, str], ...] = ()) -> Val:
        place = self.place(module, expr)
        if len(stack) > _MAX_DEPTH:
            raise self._fail("PK204", "constants refer to each other too deeply", place)
        kind = expr.get("k")
        if kind == "const":
            return Val(expr.get("v"), place)
        if kind in ("list", "tuple", "set"):
            items = [self.evaluate(module, item, stack) for item in expr.get("items", [])]
            if kind == "set":
                items.sort(key=lambda v: repr(v.value))
            return Val([v.value for v in items], place, {i: v for i, v in enumerate(items)})
        if kind == "dict":
            return self._dict(module, expr, stack, place)
        if kind == "unary":
            operand = self.evaluate(module, expr["operand"], stack)
            if not _is_number(operand.value):
                raise self._fail("PK201", "a sign applies only to numbers here", place)
            value = -operand.value if expr.get("op") == "-" else operand.value
            return Val(value, place)
        if kind == "binop":
            left = self.evaluate(module, expr["left"], stack)
            right = self.evaluate(module, expr["right"], stack)
            return Val(self._arithmetic(str(expr.get("op")), left.value, right.value, place), place)
        if kind == "name":
            return self._name(module, expr, stack, place)
        if kind == "call":
            return self._call(module, expr, stack, place)
        if kind == "sub":
            raise self._fail("PK201", "a subscript is not a literal", place)
        if kind == "ambiguous":
            raise self._fail(
                "PK204",
                f"constant `{expr.get('name')}` is assigned more than once at module level; "
                "which value a declaration sees depends on where it stands",
                place,
                hint="assign the constant once, or write the value in the declaration",
            )
        if kind == "ellipsis":
            raise self._fail("PK201", "`...` is not an option value", place)
        what = str(expr.get("what", "this expression"))
        raise self._fail("PK201", f"{what} is not a literal", place)

    def _dict(
        self, module: str, expr: Expr, stack: tuple[tuple[str, str], ...], place: Place
    ) -> Val:
        value: dict[Any, Any] = {}
        children: dict[str | int, Val] = {}
        for entry in expr.get("items", []):
            key = self.evaluate(module, entry["key"], stack)
            if not isinstance(key.value, str | int) or isinstance(key.value, bool):
                raise self._fail("PK201", "dictionary keys must be strings", key.place)
            item = self.evaluate(module, entry["value"], stack)
            value[key.value] = item.value
            children[key.value] = Val(item.value, key.place, item.children)
        return Val(value, place, children)

    def _arithmetic(self, op: str, left: Any, right: Any, place: Place) -> Any:
        """+ - * // % on numbers, + on strings: enough for `5 * 60 * 1000` and friends."""
        if _is_number(left) and _is_number(right) and op in _NUMERIC:
            try:
                result = _NUMERIC[op](left, right)
            except (ZeroDivisionError, OverflowError) as exc:
                raise self._fail("PK201", f"cannot compute this value: {exc}", place) from None
            if isinstance(result, int) and result.bit_length() > _MAX_BITS:
                raise self._fail("PK201", "this number is too large to be an option", place)
            return result
        if (
            op == "+"
            and isinstance(left, str)
            and isinstance(right, str)
            and len(left) + len(right) <= _MAX_STRING
        ):
            return left + right
        if op == "|":
            raise self._fail("PK201", "`|` is not an option value", place)
        raise self._fail("PK201", f"cannot compute `{op}` on these values statically", place)

    def _name(
        self, module: str, expr: Expr, stack: tuple[tuple[str, str], ...], place: Place
    ) -> Val:
        parts = [str(p) for p in expr.get("parts", [])]
        written = ".".join(parts)
        targets = self.tree.resolve(module, parts)
        if not targets:
            raise self._fail(
                "PK204",
                f"cannot find `{written}`: it is neither defined nor imported at module level",
                place,
            )
        target = targets[0]
        home = self.tree.constant_home(target)
        if home is None:
            if target.module is not None and not self.tree.has_module(target.module):
                message = f"`{written}` comes from `{target.module}`, outside the scanned tree"
            else:
                message = f"`{written}` is not a module-level constant with a literal value"
            raise self._fail("PK204", message, place)
        if home in stack:
            raise self._fail("PK204", f"constant `{written}` refers to itself", place)
        constant_module, name = home
        summary = self.tree.summary(constant_module)
        assert summary is not None  # constant_home found it
        constant = summary["constants"][name]
        defined = constant.get("p") or [0, 0]
        later = (int(defined[0]), int(defined[1])) > (place.line, place.column)
        if constant_module == module and later and constant.get("k") != "ambiguous":
            raise self._fail(
                "PK204",
                f"`{written}` is assigned after this line (at line {defined[0]}): importing the "
                "module would raise NameError here",
                place,
                hint="move the constant above its first use",
            )
        try:
            inner = self.evaluate(constant_module, constant, (*stack, home))
        except NotLiteral as exc:
            where = self.place(constant_module, constant)
            culprit = (exc.problem.path, exc.problem.line, exc.problem.column)
            if exc.through or exc.problem.code != "PK201" or culprit != astuple(where):
                raise  # a part inside the constant: its own position says most
            # the constant's whole value is the culprit: point at this use and name the
            # definition, rather than at the definition with a hint to make it a constant
            if where.path == place.path:
                at = f"line {where.line}"
            else:
                at = f"{where.path}:{where.line}:{where.column}"
            raise NotLiteral(
                diagnostic(
                    "PK201",
                    f"`{written}` is a module-level constant, but its value (at {at}) is not "
                    f"a literal: {exc.problem.message}",
                    path=place.path,
                    line=place.line,
                    column=place.column,
                    hint=CONSTANT_HINT,
                ),
                through=True,
            ) from None
        return Val(inner.value, place, inner.children)

    def _call(
        self, module: str, expr: Expr, stack: tuple[tuple[str, str], ...], place: Place
    ) -> Val:
        parts = [str(p) for p in expr.get("func", [])]
        written = ".".join(parts)
        targets = self.tree.resolve(module, parts)
        kinds = {pikku_kind(t) for t in targets}
        readable = bool(kinds & OPTION_CLASSES) or any(t.qualname == "dict" for t in targets)
        if not readable:
            raise self._fail("PK201", f"a call to `{written}` is not a literal", place)
        if expr.get("star"):
            raise self._fail(
                "PK201",
                f"`{written}(...)` with `*`/`**` unpacking cannot be read statically",
                place,
            )
        if expr.get("args"):
            raise self._fail(
                "PK201", f"`{written}(...)` is read with keyword arguments only", place, hint=None
            )
        value: dict[str, Any] = {}
        children: dict[str | int, Val] = {}
        for kwarg in expr.get("kwargs", []):
            item = self.evaluate(module, kwarg["value"], stack)
            key = str(kwarg["name"])
            value[key] = item.value
            children[key] = Val(item.value, self.place(module, kwarg), item.children)
        return Val(value, place, children)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
