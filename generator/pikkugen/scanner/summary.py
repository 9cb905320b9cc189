"""The per-file summary: everything linking needs from one module, as JSON-able data.

A summary depends only on the file's bytes (never on its path or on other files), which is
what makes it cacheable by content hash. Every identifier in it is what Python binds (its NFKC
form, `exprs.identifier`), never the spelling of the source. Relative imports are therefore stored relative and
resolved at link time, when the module's name is known.

Expressions are stored as small JSON trees (`Expr`), one shape for option values and
annotations: `{"k": kind, "p": [line, column], ...}` with kinds
`const` (`v`; annotation strings also carry `ann`, the parsed string), `name` (`parts`),
`list`/`tuple`/`set` (`items`), `dict` (`items`: [{key, value}]), `call` (`func`, `args`,
`kwargs`: [{name, value, p}]), `sub` (`value`, `items`), `binop` (`op`, `left`, `right`),
`unary` (`op`, `operand`), `ellipsis`, and `bad` (`what`: why it is not readable).
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

#: Bump when the summary's shape or content changes: it is part of the cache key.
SUMMARY_VERSION = "6"

Expr = dict[str, Any]


class Param(TypedDict):
    name: str
    ann: Expr | None
    p: list[int]
    kind: Literal["positional", "vararg", "keyword", "varkw"]
    default: bool


class FuncSig(TypedDict):
    name: str  # what Python binds: the NFKC form of the name as written (`ｗork` is `work`)
    is_async: bool
    p: list[int]  # position of the function's name
    params: list[Param]
    returns: Expr | None
    spelled: NotRequired[str]  # the name as written, when that is not `name`


class Decl(TypedDict):
    """A call that may be a declaration: a decorator call, a module-level call, or a
    declaration-named call inside a module-level expression (`inline`, only reported)."""

    form: Literal["decorator", "call", "inline"]
    call: Expr
    func: FuncSig | None  # the decorated function (decorator form)
    nested: bool  # inside a function or class body, not at module level


class Binding(TypedDict, total=False):
    """What a module-level name is bound to, by kind:

    - `import`: `module` is what the name refers to (`a` for `import a.b`, `a.b` for
      `import a.b as x`), `name` the module to import (`a.b` in both cases);
    - `from`: `from <level dots><module> import <name>`, resolved at link time;
    - `local`: a def, class or assignment in this module; `const` when it is a plain
      assignment whose value is in `constants`."""

    kind: Literal["import", "from", "local"]
    module: str
    level: int
    name: str
    const: bool


class Star(TypedDict):
    level: int
    module: str


class Problem(TypedDict):
    """Why the file could not be summarised (a syntax error, an undecodable byte, ...)."""

    code: str
    message: str
    line: int
    column: int


class ModuleSummary(TypedDict):
    version: str
    problem: Problem | None
    bindings: dict[str, list[Binding]]
    stars: list[Star]
    constants: dict[str, Expr]
    functions: dict[str, FuncSig]
    decls: list[Decl]


def empty_summary(problem: Problem | None = None) -> ModuleSummary:
    return {
        "version": SUMMARY_VERSION,
        "problem": problem,
        "bindings": {},
        "stars": [],
        "constants": {},
        "functions": {},
        "decls": [],
    }
