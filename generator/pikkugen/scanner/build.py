"""One declaration-shaped call → a `ProcessorDecl`, or the diagnostics saying why not.

Options are validated with the runtime's own models (`ProcessorOptions`, `QueueDefinition`),
so the generator accepts exactly what the worker would; each pydantic error is mapped back to
the keyword or dict key it concerns.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from pikku_queue.options import (
    BatchOptions,
    Dedupe,
    ProcessorOptions,
    QueueDefinition,
    RateLimit,
    Repeat,
    RetryOptions,
    option_problems,
    queue_name_problem,
)
from pydantic import ValidationError

from pikkugen.diagnostics import suggest, to_snake
from pikkugen.model import Diagnostic, Location, ProcessorDecl, TypeRef
from pikkugen.scanner.annotations import AnnotationReader, BadAnnotation
from pikkugen.scanner.codes import diagnostic
from pikkugen.scanner.discovery import SourceFile
from pikkugen.scanner.link import Tree, is_runtime, pikku_kind
from pikkugen.scanner.literals import Evaluator, NotLiteral, Place, Val
from pikkugen.scanner.modules import is_importable
from pikkugen.scanner.summary import Decl, Expr, FuncSig

OPTION_NAMES: tuple[str, ...] = tuple(ProcessorOptions.model_fields)
#: Options a worker can be given at start instead (what a variable value is usually for).
RUN_TIME_OVERRIDES: dict[str, str] = {
    "concurrency": "start the worker with `pikkugen worker --concurrency N`",
}
_DECLARATION_KINDS = {"decorator": "queue_processor", "call": "add_queue_processor"}
_DECLARATION_NAMES = frozenset(_DECLARATION_KINDS.values())


class Builder:
    def __init__(self, tree: Tree) -> None:
        self.tree = tree
        self.evaluator = Evaluator(tree)

    def build(self, file: SourceFile, decl: Decl) -> tuple[ProcessorDecl | None, list[Diagnostic]]:
        call = decl["call"]
        parts = [str(p) for p in call.get("func", [])]
        targets = self.tree.resolve(file.module, parts) if parts else []
        here = self.evaluator.place(file.module, call)
        if decl["form"] == "inline":
            kinds = sorted({k for t in targets if (k := pikku_kind(t)) in _DECLARATION_NAMES})
            if not kinds:
                return None, []
            return None, [
                _at(
                    "PK101",
                    f"{kinds[0]} is called inside an expression; pikkugen reads "
                    "@queue_processor(...) on a module-level def and add_queue_processor(...) "
                    "as a module-level statement",
                    here,
                    hint="decorate the function, or call add_queue_processor(name=..., "
                    "func=...) on its own line",
                )
            ]
        expected = _DECLARATION_KINDS[decl["form"]]
        if decl["form"] == "call" and "queue_processor" in {pikku_kind(t) for t in targets}:
            # `deco = queue_processor("q")` then `@deco`: the decorator is not pikku_queue's
            # name any more, so the declaration would be lost without a word
            return None, [
                _at(
                    "PK101",
                    "queue_processor(...) is called on its own; pikkugen reads it only as a "
                    "decorator written on a module-level def",
                    here,
                    hint="write @queue_processor(...) directly above the function",
                )
            ]
        if expected not in {pikku_kind(t) for t in targets}:
            if parts and parts[-1] == expected:
                where = f"`{targets[0].qualname}`" if targets else "nothing known"
                return None, [
                    _at(
                        "PK108",
                        f"`{'.'.join(parts)}` resolves to {where}, not pikku_queue's {expected}; ignored",
                        here,
                    )
                ]
            return None, []
        problems: list[Diagnostic] = []
        if decl["nested"]:
            return None, [
                _at(
                    "PK101",
                    f"{expected} is used inside a function or class body; the generated registry "
                    "imports processors by module path",
                    here,
                    hint="declare the processor on a module-level function",
                )
            ]
        if call.get("star"):
            return None, [
                _at(
                    "PK201",
                    f"{expected} called with `*`/`**` unpacking: its arguments cannot be read "
                    "statically",
                    here,
                    hint="write the queue name and each option as a keyword argument",
                )
            ]
        if call.get("bare"):
            return None, [
                _at(
                    "PK102",
                    "@queue_processor needs the queue name",
                    here,
                    hint='write @queue_processor("queue-name", ...)',
                )
            ]
        kwargs: list[Expr] = list(call.get("kwargs", []))
        args: list[Expr] = list(call.get("args", []))
        name_expr: Expr | None = None
        if expected == "queue_processor" and args:
            name_expr, args = args[0], args[1:]
        for arg in args:
            problems.append(
                _at(
                    "PK105",
                    f"{expected} takes the queue name and then keyword arguments only",
                    self.evaluator.place(file.module, arg),
                )
            )
        by_name: dict[str, Expr] = {}
        for kwarg in kwargs:
            by_name.setdefault(str(kwarg["name"]), kwarg)
        if name_expr is None and "name" in by_name:
            name_expr = by_name["name"]["value"]
        elif "name" in by_name:
            problems.append(
                _at(
                    "PK105",
                    "the queue name is given twice (positionally and as name=)",
                    self.evaluator.place(file.module, by_name["name"]),
                )
            )
        # every part is checked even when an earlier one failed: one scan reports every
        # problem of a declaration (name, options, signature, annotations) at once
        queue, name_problems = self._queue_name(file, name_expr, here, expected)
        problems.extend(name_problems)
        function = self._function(file, decl, by_name, here, problems)
        options = self._options(file, queue, by_name, expected, here, problems)
        if function is None:
            return None, problems
        func_module, sig = function
        batch = options.batch is not None if options is not None else "batch" in by_name
        types = self._types(func_module, sig, batch, problems)
        if queue is None or options is None or types is None or problems:
            return None, problems
        (input_ref, output_ref), takes_context = types
        return (
            ProcessorDecl(
                name=queue,
                function=f"{func_module}.{sig['name']}",
                module=func_module,
                input=input_ref,
                output=output_ref,
                is_async=sig["is_async"],
                takes_context=takes_context,
                location=Location(path=here.path, line=here.line, column=here.column),
                options=options,
            ),
            problems,
        )

    # -- parts ------------------------------------------------------------------------------

    def _queue_name(
        self, file: SourceFile, expr: Expr | None, here: Place, expected: str
    ) -> tuple[str | None, list[Diagnostic]]:
        if expr is None:
            return None, [_at("PK102", f"{expected} needs the queue name", here)]
        try:
            value = self.evaluator.evaluate(file.module, expr)
        except NotLiteral as exc:
            return None, [exc.problem]
        if not isinstance(value.value, str):
            return None, [
                _at(
                    "PK102",
                    f"the queue name must be a string, not {type(value.value).__name__}",
                    value.place,
                )
            ]
        problem = queue_name_problem(value.value)
        if problem is not None:
            return None, [_at("PK103", f"{problem}: {value.value!r}", value.place)]
        return value.value, []

    def _function(
        self,
        file: SourceFile,
        decl: Decl,
        by_name: dict[str, Expr],
        here: Place,
        problems: list[Diagnostic],
    ) -> tuple[str, FuncSig] | None:
        if decl["form"] == "decorator":
            sig = decl["func"]
            if sig is None:
                problems.append(
                    _at(
                        "PK305",
                        "queue_processor decorates a class; it must decorate a function",
                        here,
                        hint="decorate a module-level `def` or `async def` that takes (ctx, data)",
                    )
                )
                return None
            module = file.module
            shadowed = self._shadowed(file, sig)
            if shadowed is not None:
                problems.append(shadowed)
                return None
        else:
            func = by_name.get("func")
            if func is None or func["value"].get("k") != "name":
                place = self.evaluator.place(file.module, func) if func else here
                problems.append(
                    _at(
                        "PK106",
                        "add_queue_processor needs func= naming a module-level function",
                        place,
                    )
                )
                return None
            value: Expr = func["value"]
            parts = [str(p) for p in value.get("parts", [])]
            targets = self.tree.resolve(file.module, parts)
            found = None
            for target in targets[:1]:
                if "." in target.qualname:
                    module, name = target.qualname.rsplit(".", 1)
                    summary = self.tree.summary(module)
                    if summary is not None and name in summary["functions"]:
                        found = (module, summary["functions"][name])
            if found is None:
                problems.append(
                    _at(
                        "PK107",
                        f"`{'.'.join(parts)}` is not a module-level function of the scanned tree",
                        self.evaluator.place(file.module, value),
                        hint="pass a function defined with `def` in a module pikkugen scans",
                    )
                )
                return None
            module, sig = found
            defined = (int(sig["p"][0]), int(sig["p"][1]))
            if module == file.module and defined > (here.line, here.column):
                problems.append(
                    _at(
                        "PK107",
                        f"`{'.'.join(parts)}` is defined below this call (at line {defined[0]}): "
                        "importing the module would raise NameError here",
                        self.evaluator.place(file.module, value),
                        hint="call add_queue_processor after the function's `def`",
                    )
                )
                return None
        if not is_importable(module):
            normal = unicodedata.normalize("NFKC", module)
            problems.append(
                _at(
                    "PK109",
                    f"module `{module}` is not importable, so its processors cannot be registered",
                    here,
                    hint="rename the file (and folders) to Python identifiers"
                    + (
                        f" as Python reads them: `import {module}` looks for `{normal}`"
                        if normal != module
                        else ""
                    ),
                )
            )
            return None
        return module, sig

    def _shadowed(self, file: SourceFile, sig: FuncSig) -> Diagnostic | None:
        """PK110 when the module binds this function's name to a later definition: the
        registry imports `module.name`, so this queue would run that function. Python
        NFKC-normalises identifiers, so `ｗork` (full-width) shadows `work` too."""
        summary = self.tree.summary(file.module)
        bound = summary["functions"].get(sig["name"]) if summary is not None else None
        if bound is None or bound["p"] == sig["p"]:
            return None
        name, line = sig["name"], int(bound["p"][0])
        this, other = sig.get("spelled", name), bound.get("spelled", name)
        if this != other:
            why = (
                f"`{this}` and `{other}` (line {line}) are one name to Python, `{name}` "
                "(it reads identifiers in their NFKC form)"
            )
        else:
            why = f"`{this}` is defined again at line {line}"
        return _at(
            "PK110",
            f"{why}: the module binds only the later function, so the registry would import "
            "that one for this queue too",
            Place(file.rel, int(sig["p"][0]), int(sig["p"][1])),
            hint="give each processor function its own name",
        )

    def _options(
        self,
        file: SourceFile,
        queue: str | None,
        by_name: dict[str, Expr],
        expected: str,
        here: Place,
        problems: list[Diagnostic],
    ) -> ProcessorOptions | None:
        raw: dict[str, Any] = {}
        vals: dict[str, Val] = {}
        failed = False
        for key, kwarg in by_name.items():
            if key in ("name", "func") and (key == "name" or expected == "add_queue_processor"):
                continue
            place = self.evaluator.place(file.module, kwarg)
            if key not in OPTION_NAMES:
                problems.append(
                    _at(
                        "PK202",
                        f"unknown option `{key}`; valid options: {', '.join(OPTION_NAMES)}",
                        place,
                        hint=_option_suggestion(key),
                    )
                )
                failed = True
                continue
            try:
                value = self.evaluator.evaluate(file.module, kwarg["value"])
            except NotLiteral as exc:
                problem = exc.problem
                if key in RUN_TIME_OVERRIDES and problem.code in ("PK201", "PK204"):
                    extra = f"to choose it at run time, {RUN_TIME_OVERRIDES[key]}"
                    hint = f"{problem.hint}; {extra}" if problem.hint else extra
                    problem = problem.model_copy(update={"hint": hint})
                problems.append(problem)
                failed = True
                continue
            vals[key] = Val(value.value, place, value.children)
            if value.value is None and key in ("retry_options", "events"):
                continue  # the runtime treats None as "use the default"
            raw[key] = value.value
        try:  # the readable options are validated even when others failed: all at once
            options = ProcessorOptions.model_validate(raw)
        except ValidationError as exc:
            for loc, message, kind in option_problems(exc):
                place = _locate(vals, loc, here)
                label = ".".join(str(p) for p in loc)
                guess = _nested_suggestion(loc) if kind == "extra_forbidden" else None
                problems.append(
                    _at("PK203", f"{label}: {message}" if label else message, place, hint=guess)
                )
            return None
        if failed:
            return None
        if queue is not None and options.dead_letter_queue == queue:
            problems.append(
                _at(
                    "PK205",
                    f"dead_letter_queue cannot be the queue itself ({queue!r}): "
                    "failed jobs would be retried forever",
                    vals["dead_letter_queue"].place,
                    hint="name a separate queue, e.g. " + repr(f"{queue}-dlq"[:80]),
                )
            )
            return None
        if queue is not None:
            try:
                QueueDefinition(name=queue, options=options)
            except ValidationError as exc:
                first = next(option_problems(exc))
                problems.append(_at("PK203", first.message, _first_place(vals, here)))
                return None
        return options

    def _context_like(self, module: str, annotation: Expr | None) -> bool:
        """Whether the first of two parameters can be the job context: bare, annotated with
        pikku_queue's `JobContext` (any alias, re-export or constant naming it), `Any` or
        `object`, or with an annotation that is not a plain name (not judged)."""
        if annotation is None:
            return True
        expr = annotation
        for _ in range(16):  # `Ctx = JobContext` aliases, followed a few steps
            if expr.get("k") == "const" and isinstance(expr.get("ann"), dict):
                expr = expr["ann"]  # a string annotation
            if expr.get("k") != "name":
                return True
            targets = self.tree.resolve(module, [str(p) for p in expr.get("parts", [])])
            if not targets:
                return True  # unresolved: PK303 territory, not this rule's
            target = targets[0]
            if is_runtime(target.qualname) or target.qualname in _CONTEXT_LIKE:
                return True
            home = self.tree.constant_home(target)
            if home is None:
                return False
            constant_module, name = home
            summary = self.tree.summary(constant_module)
            if summary is None:
                return False
            module, expr = constant_module, summary["constants"][name]
        return True

    def _names_job_context(self, module: str, annotation: Expr | None) -> bool:
        """Whether `annotation` names pikku_queue's `JobContext` (through aliases and
        constants, as `_context_like` follows them)."""
        expr = annotation
        for _ in range(16):
            if expr is None:
                return False
            if expr.get("k") == "const" and isinstance(expr.get("ann"), dict):
                expr = expr["ann"]
            if expr.get("k") != "name":
                return False
            targets = self.tree.resolve(module, [str(p) for p in expr.get("parts", [])])
            if not targets:
                return False
            target = targets[0]
            if is_runtime(target.qualname):
                return target.qualname.rpartition(".")[2] == "JobContext"
            home = self.tree.constant_home(target)
            summary = None if home is None else self.tree.summary(home[0])
            if home is None or summary is None:
                return False
            module, expr = home[0], summary["constants"][home[1]]
        return False

    def _types(
        self, module: str, sig: FuncSig, batch: bool, problems: list[Diagnostic]
    ) -> tuple[tuple[TypeRef, TypeRef], bool] | None:
        file = self.tree.files[module]
        positional = [p for p in sig["params"] if p["kind"] == "positional"]
        pos = sig["p"]
        where = Place(file.rel, int(pos[0]), int(pos[1]))
        if len(positional) not in (1, 2):
            problems.append(
                _at(
                    "PK305",
                    f"`{sig['name']}` takes {len(positional)} positional parameters; "
                    "a processor takes (data) or (ctx, data)",
                    where,
                )
            )
            return None
        for param in sig["params"]:
            if param["kind"] == "keyword" and not param["default"]:
                ppos = param["p"]
                problems.append(
                    _at(
                        "PK305",
                        f"parameter `{param['name']}` of `{sig['name']}` is keyword-only with no "
                        "default; workers call a processor as (data) or (ctx, data), positionally",
                        Place(file.rel, int(ppos[0]), int(ppos[1])),
                    )
                )
                return None
        payload = positional[-1]
        if len(positional) == 1 and (
            self._names_job_context(module, payload["ann"])
            or (payload["ann"] is None and payload["name"] in ("ctx", "context"))
        ):
            ppos = payload["p"]
            problems.append(
                _at(
                    "PK305",
                    f"missing payload parameter: `{sig['name']}` takes only the job context "
                    f"`{payload['name']}`; a processor takes (data) or (ctx, data)",
                    Place(file.rel, int(ppos[0]), int(ppos[1])),
                    hint=f"add the payload after it, e.g. `{sig['name']}({payload['name']}: "
                    "JobContext, data: dict[str, Any])` (or a pydantic model); enqueue `{}` "
                    "when there is nothing to send",
                )
            )
            return None
        reader = AnnotationReader(self.tree, module, file.rel)
        if len(positional) == 2 and not self._context_like(module, positional[0]["ann"]):
            first, second = positional
            ppos = first["p"]
            problems.append(
                _at(
                    "PK305",
                    f"`{sig['name']}` takes ({first['name']}, {second['name']}) and the first "
                    "is annotated as something other than the job context; a processor takes "
                    "(data) or (ctx, data), so this would read the payload type from "
                    f"`{second['name']}`",
                    Place(file.rel, int(ppos[0]), int(ppos[1])),
                    hint="pass extra values in the payload or through services; annotate the "
                    "first parameter `JobContext` (or leave it bare) if it is the context",
                )
            )
            return None
        annotation = payload["ann"]
        returns = sig["returns"]
        missing = False
        if annotation is None:
            ppos = payload["p"]
            problems.append(
                _at(
                    "PK301",
                    f"parameter `{payload['name']}` of `{sig['name']}` has no annotation; "
                    "pikkugen reads the payload type from it",
                    Place(file.rel, int(ppos[0]), int(ppos[1])),
                )
            )
            missing = True
        if returns is None:
            problems.append(
                _at(
                    "PK301",
                    f"`{sig['name']}` has no return annotation; pikkugen reads the result type "
                    "from it (write `-> None` if it returns nothing)",
                    where,
                )
            )
            missing = True
        if missing or annotation is None or returns is None:
            return None
        if batch:
            element_in = reader.element(annotation)
            element_out = reader.element(returns)
            for element, expr, what in (
                (element_in, annotation, "take"),
                (element_out, returns, "return"),
            ):
                if element is None:
                    epos = expr.get("p") or pos
                    problems.append(
                        _at(
                            "PK304",
                            f"a batch processor must {what} `list[X]`",
                            Place(file.rel, int(epos[0]), int(epos[1])),
                            hint="batch processors receive a list of payloads and return one result per item",
                        )
                    )
            if element_in is None or element_out is None:
                return None
            annotation, returns = element_in, element_out
        try:
            input_ref = reader.type_ref(annotation)
            output_ref = reader.type_ref(returns)
        except BadAnnotation as exc:
            problems.append(exc.problem)
            return None
        return (input_ref, output_ref), len(positional) == 2


#: Options whose value is one of the runtime's models: unknown keys inside get a suggestion.
_NESTED: dict[str, tuple[str, ...]] = {
    "retry_options": tuple(RetryOptions.model_fields),
    "batch": tuple(BatchOptions.model_fields),
    "repeat": tuple(Repeat.model_fields),
    "rate_limit": tuple(RateLimit.model_fields),
    "dedupe": tuple(Dedupe.model_fields),
}


def _option_suggestion(key: str) -> str | None:
    """`did you mean` for an unknown option: an option spelled another way, else a key of an
    option's model written at the top level (`maxDelay=` is `retry_options={"max_delay": ...}`)."""
    close = suggest(key, OPTION_NAMES)
    if close is not None and to_snake(key) == close:
        return f"did you mean `{close}`?"
    for option, fields in _NESTED.items():
        if to_snake(key) in fields:
            return f"`{to_snake(key)}` is a key of `{option}`: {option}={{{to_snake(key)!r}: ...}}"
    return f"did you mean `{close}`?" if close else None


def _nested_suggestion(loc: tuple[Any, ...]) -> str | None:
    """`did you mean ...` for an unknown key inside `retry_options={...}` and the like."""
    if len(loc) != 2 or str(loc[0]) not in _NESTED:
        return None
    close = suggest(str(loc[1]), _NESTED[str(loc[0])])
    return f"did you mean `{close}`?" if close else None


#: What the context parameter of `(ctx, data)` may be annotated as, besides pikku_queue's.
_CONTEXT_LIKE = frozenset({"typing.Any", "typing_extensions.Any", "object"})


def _at(code: str, message: str, place: Place, hint: str | None = None) -> Diagnostic:
    return diagnostic(
        code, message, path=place.path, line=place.line, column=place.column, hint=hint
    )


def _locate(vals: dict[str, Val], loc: tuple[Any, ...], fallback: Place) -> Place:
    """The most precise known position for a pydantic error location."""
    if not loc or str(loc[0]) not in vals:
        return _first_place(vals, fallback)
    current = vals[str(loc[0])]
    for part in loc[1:]:
        child = current.children.get(part)
        if child is None:
            break
        current = child
    return current.place


def _first_place(vals: dict[str, Val], fallback: Place) -> Place:
    for val in vals.values():
        return val.place
    return fallback
