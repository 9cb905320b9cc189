"""The per-file pass: source bytes → `ModuleSummary`, with libcst and no import of the code.

One walk over the top-level statements tracks imports by hand (measured: ~4× faster than
libcst's scope/qualified-name providers) and collects what linking needs: bindings, literal
constants, function signatures and every call that may be a declaration. Positions are computed
afterwards for the few statements that hold something reportable (see `positions`).
"""

from __future__ import annotations

import ast
import io
import tokenize
import warnings
from collections.abc import Callable, Sequence
from functools import partial

import libcst as cst

from pikkugen.scanner.exprs import PosOf, convert, convert_call, dotted, identifier
from pikkugen.scanner.guard import Checked, check_source, position_of, too_deep
from pikkugen.scanner.positions import Statement, first_lines, first_lines_from_ast, positions
from pikkugen.scanner.summary import (
    Binding,
    Decl,
    FuncSig,
    ModuleSummary,
    Param,
    Problem,
    empty_summary,
)

#: How many files this process has parsed with libcst (tests use it to prove cache hits).
parse_count = 0

_STUB = cst.IndentedBlock(body=[cst.SimpleStatementLine(body=[cst.Pass()])])
_DECLARATION_NAMES = frozenset({"queue_processor", "add_queue_processor"})


def summarize(data: bytes, *, isolate: bool = False) -> ModuleSummary:
    """Summarise one file. Never raises on bad input: problems land in `summary["problem"]`.

    CPython's parser and the nesting budget (`guard`) see the file before libcst does; with
    `isolate`, a file deeper than `guard.SAFE_DEPTH` is parsed in a child process (`pool`),
    so an unforeseen native crash of libcst costs a diagnostic for this file only.

    Warnings are silenced: CPython's SyntaxWarnings (`'\\d'`, `1if x else y`), raised while
    libcst evaluates literals or `ast` parses, are the user's business; printed they would be
    noise, and under `-W error` they would turn valid code into failures."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _summarize(data, isolate)


def checked_text(data: bytes) -> tuple[str, Checked] | Problem:
    """The decoded text and CPython's tree of a file, or why the file is refused before
    libcst: it does not decode, CPython rejects it, or it nests beyond the budget."""
    text_or_problem = _decode(data)
    if not isinstance(text_or_problem, str):
        return text_or_problem
    text = text_or_problem
    if "\0" in text:  # CPython 3.11 reports a NUL without a position
        line, column = position_of(text, text.find("\0"))
        return {
            "code": "PK001",
            "message": "invalid syntax: source code cannot contain null bytes",
            "line": line,
            "column": column,
        }
    checked = check_source(text)
    if not isinstance(checked, Checked):
        return checked
    return text, checked


def crash_problem(data: bytes, why: str) -> Problem:
    """The diagnostic for a file whose parse killed (or outlasted) a child process: at the
    file's deepest point, which is what libcst recurses on."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = checked_text(data)
    line, column = found[1].where if isinstance(found, tuple) else (1, 1)
    return too_deep(line, column, why)


def _summarize(data: bytes, isolate: bool) -> ModuleSummary:
    global parse_count
    found = checked_text(data)
    if not isinstance(found, tuple):
        return empty_summary(found)
    text, checked = found
    if isolate and checked.deep:
        from pikkugen.scanner.pool import summarize_isolated

        isolated = summarize_isolated(data)
        if isolated is not None:
            return isolated
    try:
        parse_count += 1
        module = cst.parse_module(text)
    except RecursionError:
        return empty_summary(too_deep(*checked.where, "libcst gives up on it"))
    except Exception as exc:  # ParserSyntaxError, or libcst's own errors on odd input
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        line, column = getattr(exc, "raw_line", 1), getattr(exc, "raw_column", 0)
        known = isinstance(line, int) and isinstance(column, int) and line >= 1
        return empty_summary(
            {
                "code": "PK005",
                "message": f"libcst cannot parse this file although Python can: {first}",
                "line": line if known else 1,
                "column": column + 1 if known else 1,
            }
        )
    try:
        return _Summarizer(module, text, checked.tree).run()
    except RecursionError:
        return empty_summary(too_deep(*checked.where, "the scanner gives up on it"))
    except Exception as exc:  # a scanner bug must not hide the other files' results
        return empty_summary(
            {"code": "PK900", "message": f"internal scanner error: {exc!r}", "line": 1, "column": 1}
        )


def _decode(data: bytes) -> str | Problem:
    cookie_problem: Problem | None = None
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        encoding = "utf-8"  # undecodable first lines: find the byte below; else a bad cookie
        cookie_problem = {"code": "PK002", "message": str(exc.msg), "line": 1, "column": 1}
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        column = exc.start - (before.rfind(b"\n") + 1) + 1
        return {
            "code": "PK002",
            "message": f"cannot decode byte 0x{data[exc.start]:02x} as {encoding}",
            "line": line,
            "column": column,
        }
    except LookupError as exc:  # a codec that is not a text encoding (e.g. rot13)
        return {"code": "PK002", "message": str(exc), "line": 1, "column": 1}
    return cookie_problem if cookie_problem is not None else text


class _Nested:
    """Finds declaration-shaped statements inside function and class bodies (they would not be
    importable processors, so they are reported rather than silently skipped). Walks
    statements only, never expressions: a decorated def or a call statement is a statement."""

    def __init__(self, call_names: frozenset[str]) -> None:
        self.call_names = call_names
        self.decorated: list[cst.FunctionDef] = []
        self.calls: list[cst.Call] = []

    def block(self, suite: cst.BaseSuite) -> None:
        if isinstance(suite, cst.IndentedBlock):
            for statement in suite.body:
                self.statement(statement)
        elif isinstance(suite, cst.SimpleStatementSuite):
            self.smalls(suite.body)

    def smalls(self, smalls: Sequence[cst.BaseSmallStatement]) -> None:
        for small in smalls:
            value = small.value if isinstance(small, cst.Expr | cst.Assign) else None
            if isinstance(value, cst.Call):
                parts = dotted(value.func)
                if parts is not None and parts[-1] in self.call_names:
                    self.calls.append(value)

    def statement(self, statement: cst.BaseStatement) -> None:
        if isinstance(statement, cst.SimpleStatementLine):
            self.smalls(statement.body)
            return
        if isinstance(statement, cst.FunctionDef) and any(
            _decorator_call(d) is not None for d in statement.decorators
        ):
            self.decorated.append(statement)
        for suite in _suites(statement):
            self.block(suite)


def _suites(statement: cst.BaseStatement) -> list[cst.BaseSuite]:
    """The blocks directly inside a compound statement."""
    if isinstance(statement, cst.FunctionDef | cst.ClassDef | cst.With | cst.For | cst.While):
        suites = [statement.body]
        orelse = getattr(statement, "orelse", None)
        if orelse is not None:
            suites.append(orelse.body)
        return suites
    if isinstance(statement, cst.If):
        suites = [statement.body]
        if statement.orelse is not None:
            suites.extend(
                _suites(statement.orelse)
                if isinstance(statement.orelse, cst.If)
                else [statement.orelse.body]
            )
        return suites
    if isinstance(statement, cst.Try | cst.TryStar):
        suites = [statement.body, *(h.body for h in statement.handlers)]
        if statement.orelse is not None:
            suites.append(statement.orelse.body)
        if statement.finalbody is not None:
            suites.append(statement.finalbody.body)
        return suites
    if isinstance(statement, cst.Match):
        return [case.body for case in statement.cases]
    return []


def _decorator_call(decorator: cst.Decorator) -> cst.Call | list[str] | None:
    expr = decorator.decorator
    if isinstance(expr, cst.Call):
        return expr if dotted(expr.func) is not None else None
    return dotted(expr)


class _Summarizer:
    def __init__(self, module: cst.Module, text: str, tree: ast.Module) -> None:
        self.module = module
        self.text = text
        self.tree = tree
        self.summary = empty_summary()
        #: top-level index → the statement (possibly stubbed) whose positions are needed.
        self.wanted: dict[int, Statement] = {}
        self.jobs: list[Callable[[PosOf], None]] = []
        self.call_names: set[str] = set(_DECLARATION_NAMES)

    def run(self) -> ModuleSummary:
        body = self.module.body
        self._collect_imports(body)
        for index, statement in enumerate(body):
            self._top_level(index, statement)
        if self.wanted:
            upto = max(self.wanted) + 1
            lines = first_lines_from_ast(self.module, self.tree, upto) or first_lines(
                self.module, upto
            )
            found = positions(
                self.module, [(lines[i], self.wanted[i]) for i in sorted(self.wanted)]
            )

            def pos_of(node: cst.CSTNode) -> list[int]:
                return found.get(node, [1, 1])

            for job in self.jobs:
                job(pos_of)
        return self.summary

    # -- bindings -----------------------------------------------------------------------------

    def _bind(self, name: str, binding: Binding, conditional: bool) -> None:
        bindings = self.summary["bindings"]
        if conditional and name in bindings:
            if binding not in bindings[name]:
                bindings[name].append(binding)
        else:
            bindings[name] = [binding]

    def _collect_imports(self, body: Sequence[cst.BaseStatement]) -> None:
        """Names imported under an alias of `add_queue_processor` (for nested-call search)."""
        for statement in body:
            if isinstance(statement, cst.SimpleStatementLine):
                for small in statement.body:
                    if isinstance(small, cst.ImportFrom) and not isinstance(
                        small.names, cst.ImportStar
                    ):
                        for alias in small.names:
                            if (
                                isinstance(alias.name, cst.Name)
                                and identifier(alias.name) in _DECLARATION_NAMES
                            ):
                                self.call_names.add(_alias_name(alias) or identifier(alias.name))

    def _import(self, node: cst.Import, conditional: bool) -> None:
        for alias in node.names:
            parts = dotted(alias.name)
            if parts is None:
                continue
            full = ".".join(parts)
            asname = _alias_name(alias)
            if asname is not None:
                self._bind(asname, {"kind": "import", "module": full, "name": full}, conditional)
            else:
                self._bind(
                    parts[0], {"kind": "import", "module": parts[0], "name": full}, conditional
                )

    def _import_from(self, node: cst.ImportFrom, conditional: bool) -> None:
        level = len(node.relative)
        module = ".".join(dotted(node.module) or []) if node.module is not None else ""
        if isinstance(node.names, cst.ImportStar):
            star = {"level": level, "module": module}
            if star not in self.summary["stars"]:
                self.summary["stars"].append({"level": level, "module": module})
            return
        for alias in node.names:
            if not isinstance(alias.name, cst.Name):
                continue
            name = identifier(alias.name)
            local = _alias_name(alias) or name
            self._bind(
                local, {"kind": "from", "level": level, "module": module, "name": name}, conditional
            )

    # -- statements -----------------------------------------------------------------------------

    def _top_level(self, index: int, statement: cst.BaseStatement) -> None:
        self._statement(index, statement, conditional=False)

    def _statement(self, index: int, statement: cst.BaseStatement, conditional: bool) -> None:
        if isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                self._small(index, small, conditional)
        elif isinstance(statement, cst.FunctionDef):
            self._function(index, statement, conditional)
        elif isinstance(statement, cst.ClassDef):
            self._bind(identifier(statement.name), {"kind": "local"}, conditional)
            self._nested(index, statement)
            if any(isinstance(d.decorator, cst.Call) for d in statement.decorators):
                self._want(index)
                self.jobs.append(partial(self._class_decorators, statement))
        elif isinstance(statement, cst.If):
            self._block(index, statement.body, True)
            orelse = statement.orelse
            while orelse is not None:
                self._block(index, orelse.body, True)
                orelse = orelse.orelse if isinstance(orelse, cst.If) else None
        elif isinstance(statement, cst.Try | cst.TryStar):
            self._block(index, statement.body, True)
            for handler in statement.handlers:
                self._block(index, handler.body, True)
            if statement.orelse is not None:
                self._block(index, statement.orelse.body, True)
            if statement.finalbody is not None:
                self._block(index, statement.finalbody.body, True)
        elif isinstance(statement, cst.With | cst.For | cst.While):
            self._block(index, statement.body, True)

    def _block(self, index: int, block: cst.BaseSuite, conditional: bool) -> None:
        if isinstance(block, cst.IndentedBlock):
            for statement in block.body:
                self._statement(index, statement, conditional)
        elif isinstance(block, cst.SimpleStatementSuite):
            for small in block.body:
                self._small(index, small, conditional)

    def _want(self, index: int) -> None:
        """Positions are needed inside top-level statement `index` (never a stub then)."""
        self.wanted[index] = self.module.body[index]

    def _small(
        self,
        index: int,
        small: cst.BaseSmallStatement,
        conditional: bool,
    ) -> None:
        if isinstance(small, cst.Import):
            self._import(small, conditional)
        elif isinstance(small, cst.ImportFrom):
            self._import_from(small, conditional)
        elif isinstance(small, cst.Assign | cst.AnnAssign):
            value = small.value
            targets = (
                [t.target for t in small.targets]
                if isinstance(small, cst.Assign)
                else [small.target]
            )
            if value is None:
                return
            for target in targets:
                if isinstance(target, cst.Name):
                    name = identifier(target)
                    self._bind(name, {"kind": "local", "const": True}, conditional)
                    self._want(index)
                    self.jobs.append(partial(self._constant, name, value))
                else:
                    for inner in _target_names(target):
                        self._bind(inner, {"kind": "local"}, conditional)
            if isinstance(value, cst.Call) and dotted(value.func) is not None:
                self._want(index)
                self.jobs.append(partial(self._call_decl, value, False))
            self._inline_calls(index, value)
        elif isinstance(small, cst.AugAssign):
            if isinstance(small.target, cst.Name):
                self._bind(identifier(small.target), {"kind": "local"}, conditional)
        elif isinstance(small, cst.Expr) and isinstance(small.value, cst.Call):
            call = small.value
            if dotted(call.func) is not None:
                self._want(index)
                self.jobs.append(partial(self._call_decl, call, False))
            self._inline_calls(index, call)
        elif isinstance(small, cst.TypeAlias):
            self._bind(identifier(small.name), {"kind": "local"}, conditional)

    def _inline_calls(self, index: int, value: cst.BaseExpression) -> None:
        """Declaration-named calls inside a module-level expression (`queue_processor("q")(f)`,
        `[add_queue_processor(...)]`): not forms pikkugen reads, so they are recorded to be
        reported if they resolve to pikku_queue's, rather than silently skipped."""
        found: list[cst.Call] = []
        pending: list[cst.CSTNode] = [value]
        while pending:
            node = pending.pop()
            if isinstance(node, cst.Lambda):
                continue  # a call in a body runs later, if ever: not a declaration here
            # the statement's own call (`add_queue_processor(...)`) is read as a declaration
            if isinstance(node, cst.Call) and node is not value:
                parts = dotted(node.func)
                if parts is not None and parts[-1] in self.call_names:
                    found.append(node)
            pending.extend(node.children)
        if found:
            self._want(index)
            for call in found:
                self.jobs.append(partial(self._inline_decl, call))

    def _inline_decl(self, call: cst.Call, pos_of: PosOf) -> None:
        self.summary["decls"].append(
            {"form": "inline", "call": convert_call(call, pos_of), "func": None, "nested": False}
        )

    def _constant(self, name: str, value: cst.BaseExpression, pos_of: PosOf) -> None:
        constants = self.summary["constants"]
        if name in constants:
            # Python evaluates a declaration's options when it runs, so which of two module-level
            # assignments it sees depends on where it stands (or on a branch): never guess.
            constants[name] = {"k": "ambiguous", "name": name, "p": pos_of(value)}
            return
        constants[name] = convert(value, pos_of)

    def _call_decl(self, call: cst.Call, nested: bool, pos_of: PosOf) -> None:
        decl: Decl = {
            "form": "call",
            "call": convert_call(call, pos_of),
            "func": None,
            "nested": nested,
        }
        self.summary["decls"].append(decl)

    def _function(self, index: int, node: cst.FunctionDef, conditional: bool) -> None:
        self._bind(identifier(node.name), {"kind": "local"}, conditional)
        has_nested = self._nested(index, node)
        top = self.module.body[index]
        if top is node and not has_nested:
            node = node.with_changes(body=_STUB)
            self.wanted[index] = node
        else:
            self.wanted[index] = top
        self.jobs.append(partial(self._record_function, node))

    def _record_function(self, node: cst.FunctionDef, pos_of: PosOf) -> None:
        sig = _signature(node, pos_of)
        self.summary["functions"][sig["name"]] = sig
        for decorator in node.decorators:
            self._decorator_decl(decorator, sig, pos_of, nested=False)

    def _class_decorators(self, node: cst.ClassDef, pos_of: PosOf) -> None:
        """Recorded without a function: declaring a class is reported, not skipped."""
        for decorator in node.decorators:
            if isinstance(decorator.decorator, cst.Call):
                self._decorator_decl(decorator, None, pos_of, nested=False)

    def _decorator_decl(
        self, decorator: cst.Decorator, sig: FuncSig | None, pos_of: PosOf, *, nested: bool
    ) -> None:
        found = _decorator_call(decorator)
        if found is None:
            return
        if isinstance(found, cst.Call):
            call = convert_call(found, pos_of)
        else:
            call = {
                "k": "call",
                "func": found,
                "args": [],
                "kwargs": [],
                "bare": True,
                "p": pos_of(decorator.decorator),
            }
        self.summary["decls"].append(
            {"form": "decorator", "call": call, "func": sig, "nested": nested}
        )

    def _nested(self, index: int, node: cst.FunctionDef | cst.ClassDef) -> bool:
        finder = _Nested(frozenset(self.call_names))
        finder.block(node.body)
        if not finder.decorated and not finder.calls:
            return False
        self.wanted[index] = self.module.body[index]
        for inner in finder.decorated:
            self.jobs.append(partial(self._nested_function, inner))
        for call in finder.calls:
            self.jobs.append(partial(self._call_decl, call, True))
        return True

    def _nested_function(self, node: cst.FunctionDef, pos_of: PosOf) -> None:
        sig = _signature(node, pos_of)
        for decorator in node.decorators:
            self._decorator_decl(decorator, sig, pos_of, nested=True)


def _alias_name(alias: cst.ImportAlias) -> str | None:
    if alias.asname is None:
        return None
    name = alias.asname.name
    return identifier(name) if isinstance(name, cst.Name) else None


def _target_names(target: cst.BaseExpression) -> list[str]:
    if isinstance(target, cst.Name):
        return [identifier(target)]
    if isinstance(target, cst.Tuple | cst.List):
        names: list[str] = []
        for element in target.elements:
            names.extend(_target_names(element.value))
        return names
    return []


def _signature(node: cst.FunctionDef, pos_of: PosOf) -> FuncSig:
    params: list[Param] = []
    ps = node.params

    def add(param: cst.Param, kind: str) -> None:
        annotation = param.annotation
        params.append(
            {
                "name": identifier(param.name),
                "ann": convert(annotation.annotation, pos_of, annotation=True)
                if annotation
                else None,
                "p": pos_of(param.name),
                "kind": kind,  # type: ignore[typeddict-item]
                "default": param.default is not None,
            }
        )

    for param in [*ps.posonly_params, *ps.params]:
        add(param, "positional")
    if isinstance(ps.star_arg, cst.Param):
        add(ps.star_arg, "vararg")
    for param in ps.kwonly_params:
        add(param, "keyword")
    if ps.star_kwarg is not None:
        add(ps.star_kwarg, "varkw")
    returns = node.returns
    sig: FuncSig = {
        "name": identifier(node.name),
        "is_async": node.asynchronous is not None,
        "p": pos_of(node.name),
        "params": params,
        "returns": convert(returns.annotation, pos_of, annotation=True) if returns else None,
    }
    if node.name.value != sig["name"]:
        sig["spelled"] = node.name.value  # for the diagnostic of a name it collides with
    return sig
