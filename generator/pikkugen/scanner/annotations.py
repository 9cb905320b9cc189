"""Annotations → `TypeRef`: the text rebuilt from the tree with every name fully qualified.

Only names, attributes, subscripts, `|`, `None`, constants, `...` and the lists/tuples used in
`Callable[[...], R]` are rebuilt; anything else is a diagnostic. The text is never copied from
the user's source, so what reaches generated code is made of identifiers and `repr()`s only.
"""

from __future__ import annotations

from pikkugen.model import Diagnostic, TypeRef
from pikkugen.scanner.codes import diagnostic
from pikkugen.scanner.link import Tree
from pikkugen.scanner.modules import is_importable
from pikkugen.scanner.summary import Expr

_LITERALS = frozenset({"typing.Literal", "typing_extensions.Literal"})
_ANNOTATED = frozenset({"typing.Annotated", "typing_extensions.Annotated"})
#: What a batch processor may take and return; the IR holds the element type.
SEQUENCES = frozenset(
    {"list", "typing.List", "typing.Sequence", "collections.abc.Sequence", "typing.MutableSequence"}
)
_ALIAS_HINT = (
    "annotations may hold names, attributes, subscripts, `|`, None and constants; "
    "define a type alias in a module (e.g. `PositiveInt = Annotated[int, Field(gt=0)]`) and use it"
)


class BadAnnotation(Exception):
    def __init__(self, problem: Diagnostic) -> None:
        super().__init__(problem.message)
        self.problem = problem


class AnnotationReader:
    """Renders annotation `Expr`s written in one module (names resolve in that module)."""

    def __init__(self, tree: Tree, module: str, path: str) -> None:
        self.tree = tree
        self.module = module
        self.path = path
        self.modules: set[str] = set()

    def type_ref(self, expr: Expr) -> TypeRef:
        self.modules = set()
        text = self.render(expr)
        return TypeRef(annotation=text, modules=tuple(sorted(self.modules)))

    def _fail(self, code: str, message: str, expr: Expr, hint: str | None = None) -> BadAnnotation:
        pos = expr.get("p") or [1, 1]
        return BadAnnotation(
            diagnostic(
                code, message, path=self.path, line=int(pos[0]), column=int(pos[1]), hint=hint
            )
        )

    def qualify(self, expr: Expr) -> str:
        parts = [str(p) for p in expr.get("parts", [])]
        written = ".".join(parts)
        targets = self.tree.resolve(self.module, parts)
        if not targets:
            raise self._fail(
                "PK303",
                f"cannot resolve `{written}` in this annotation: it is neither defined nor imported",
                expr,
                hint="import the type at module level (a TYPE_CHECKING import works too)",
            )
        target = targets[0]
        if not is_importable(target.qualname):
            raise self._fail(
                "PK303",
                f"`{written}` resolves to `{target.qualname}`, which is not an importable name",
                expr,
                hint="types must live in modules whose file names are Python identifiers",
            )
        if target.module is not None:
            self.modules.add(target.module)
        return target.qualname

    def render(self, expr: Expr, *, literal: bool = False) -> str:
        kind = expr.get("k")
        if kind == "name":
            return self.qualify(expr)
        if kind == "const":
            value = expr.get("v")
            if isinstance(value, str) and not literal:
                inner = expr.get("ann")
                if not isinstance(inner, dict):
                    raise self._fail("PK302", "a string annotation that cannot be read", expr)
                if inner.get("k") == "bad" and str(inner.get("what", "")).startswith(
                    "an annotation string"
                ):
                    raise self._fail(
                        "PK302",
                        f"this string annotation cannot be read: {inner['what']}",
                        expr,
                        hint="write the type without quotes, or name a shallower type alias",
                    )
                return self.render(inner)
            if value is None or isinstance(value, str | bool | int | float):
                return repr(value)
            raise self._fail("PK302", "a constant of this kind in an annotation", expr)
        if kind == "unary" and expr.get("op") == "-":
            operand = expr.get("operand") or {}
            number = operand.get("v")
            if (
                operand.get("k") == "const"
                and isinstance(number, int | float)
                and not isinstance(number, bool)
            ):
                return repr(-number)
        if kind == "binop" and expr.get("op") == "|":
            return f"{self.render(expr['left'])} | {self.render(expr['right'])}"
        if kind == "sub":
            return self._subscript(expr)
        if kind == "list":
            return (
                "["
                + ", ".join(self.render(i, literal=literal) for i in expr.get("items", []))
                + "]"
            )
        if kind == "tuple":
            items = [self.render(i, literal=literal) for i in expr.get("items", [])]
            return "(" + items[0] + ",)" if len(items) == 1 else "(" + ", ".join(items) + ")"
        if kind == "ellipsis":
            return "..."
        what = str(expr.get("what") or _DESCRIBE.get(str(kind), "this expression"))
        raise self._fail("PK302", f"{what} cannot be part of an annotation", expr, hint=_ALIAS_HINT)

    def _subscript(self, expr: Expr) -> str:
        value = expr.get("value") or {}
        head = self.render(value)
        items: list[Expr] = list(expr.get("items", []))
        if head in _LITERALS:
            rendered = [self.render(i, literal=True) for i in items]
        elif head in _ANNOTATED and items:
            rendered = [self.render(items[0])] + [self.render(i, literal=True) for i in items[1:]]
        else:
            rendered = [self.render(i) for i in items]
        return f"{head}[{', '.join(rendered)}]"

    def element(self, expr: Expr) -> Expr | None:
        """`X` when `expr` is `list[X]` (or a Sequence of X); None otherwise."""
        if expr.get("k") == "const" and isinstance(expr.get("ann"), dict):
            return self.element(expr["ann"])
        if expr.get("k") != "sub" or len(expr.get("items", [])) != 1:
            return None
        value = expr.get("value") or {}
        if value.get("k") != "name":
            return None
        targets = self.tree.resolve(self.module, [str(p) for p in value.get("parts", [])])
        if not targets or targets[0].qualname not in SEQUENCES:
            return None
        item: Expr = expr["items"][0]
        return item


_DESCRIBE = {
    "call": "a call",
    "dict": "a dict",
    "set": "a set",
    "binop": "an operator other than `|`",
    "unary": "a unary operator",
}
