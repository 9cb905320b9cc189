"""JSON Schemas for every processor's input and output type, made in one child process.

A schema needs the type itself, and the type lives in user code, so its module has to be
imported. That happens in a child interpreter: a module that crashes, exits, prints, hangs or
leaves global state behind cannot take the generator down with it, and each failure comes back
as a diagnostic naming the module and the exception. One child serves the whole generation
(interpreter and pydantic start-up dominate), and its answer is cached under
`.pikkugen_cache/` keyed on the requested types and the project's source files.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pydantic

from pikkugen.config import Config
from pikkugen.diagnostics import suggest
from pikkugen.model import Diagnostic, ProcessorDecl, TypeRef

Schema = dict[str, Any]
CHILD_TIMEOUT_S = 120.0
#: A `Dedupe.key` placeholder or `RateLimit.group_key` names a field the input type lacks.
PAYLOAD_FIELD = "PK705"
CACHE_FOLDER = ".pikkugen_cache"
_IMPORTING = "PIKKUGEN-IMPORTING "
_SKIP_DIRS = {"__pycache__", "node_modules", "site-packages", "venv", "build", "dist"}


@dataclass(frozen=True)
class SchemaResult:
    #: queue name -> (input schema, output schema); queues whose types failed are absent.
    schemas: dict[str, tuple[Schema, Schema]] = field(default_factory=dict)
    diagnostics: tuple[Diagnostic, ...] = ()


def import_root(decl: ProcessorDecl, root: Path) -> Path:
    """The sys.path entry `decl`'s module is imported from: its file's folder, minus one
    folder per dotted part of the module name (`src/shop/email.py`, `shop.email` -> `src`)."""
    file = root / PurePosixPath(decl.location.path)
    depth = decl.module.count(".") + 1
    if file.name == "__init__.py":
        depth += 1
    folder = file
    for _ in range(depth):
        folder = folder.parent
    return folder


def build_schemas(config: Config, processors: Sequence[ProcessorDecl]) -> SchemaResult:
    """Schemas for `processors`, from the cache when nothing they could depend on changed."""
    if not processors:
        return SchemaResult()
    roots = sorted({import_root(p, config.root) for p in processors} | set(_path_roots(config)))
    types = _requested_types(processors)
    request = {"sys_path": [str(r) for r in roots], "types": types}
    cache_file = _cache_file(config, request) if config.cache else None
    if cache_file is not None and cache_file.is_file():
        try:
            answer = json.loads(cache_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            answer = None
    else:
        answer = None
    if answer is None:
        answer, crash = _run_child(request, cwd=config.root)
        if crash is not None:
            return SchemaResult(diagnostics=(crash,))
        if cache_file is not None and not answer["errors"] and not answer["module_errors"]:
            _store(cache_file, answer)
    return _collect(processors, answer)


def _store(cache_file: Path, answer: dict[str, Any]) -> None:
    """Best effort: a cache that cannot be written only makes the next run slower."""
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(answer), encoding="utf-8")
        tmp.replace(cache_file)
        for stale in cache_file.parent.glob("*.json"):
            if stale != cache_file:  # every edit makes a new key: keep only the latest
                stale.unlink(missing_ok=True)
    except OSError:
        pass


def _path_roots(config: Config) -> Iterator[Path]:
    """Scanned folders that are not packages are import roots themselves (a `src/` layout)."""
    for path in config.paths:
        if path.is_dir() and not (path / "__init__.py").is_file():
            yield path


def _requested_types(processors: Sequence[ProcessorDecl]) -> list[dict[str, Any]]:
    seen: dict[tuple[str, str, tuple[str, ...]], dict[str, Any]] = {}
    for decl in processors:
        for mode, ref in (("validation", decl.input), ("serialization", decl.output)):
            key = (mode, ref.annotation, ref.modules)
            item = seen.setdefault(
                key, {"mode": mode, "annotation": ref.annotation, "modules": list(ref.modules)}
            )
            if mode == "validation" and decl.options.repeat is not None:
                # A processor's own schedule enqueues `{}`: ask the child whether it validates.
                item["check_empty"] = True
    return [seen[k] for k in sorted(seen)]


def _type_key(mode: str, ref: TypeRef) -> str:
    return json.dumps([mode, ref.annotation, list(ref.modules)])


def _collect(processors: Sequence[ProcessorDecl], answer: dict[str, Any]) -> SchemaResult:
    schemas: dict[str, tuple[Schema, Schema]] = {}
    diagnostics: list[Diagnostic] = []
    module_errors: dict[str, str] = answer["module_errors"]
    type_errors: dict[str, str] = answer["errors"]
    results: dict[str, Schema] = answer["schemas"]
    empty_errors: dict[str, str] = answer.get("empty_errors", {})
    reported_modules: set[tuple[str, str]] = set()
    for decl in processors:
        empty_error = empty_errors.get(_type_key("validation", decl.input))
        if decl.options.repeat is not None and empty_error is not None:
            diagnostics.append(
                Diagnostic.at(
                    decl.location,
                    "error",
                    "PK704",
                    f"queue {decl.name!r} has a repeat schedule, whose runs carry the "
                    f"payload {{}}, but its input type {decl.input.annotation!r} rejects it: "
                    f"{empty_error}",
                    hint="give every field of the input type a default (or take "
                    "`dict[str, Any]`), or enqueue the recurring job with its payload: "
                    "`queue_job(..., repeat=Repeat(...))`",
                )
            )
        input_schema = results.get(_type_key("validation", decl.input))
        if input_schema is not None:
            diagnostics.extend(payload_field_problems(decl, input_schema))
        pair: list[Schema] = []
        for mode, ref, what in (
            ("validation", decl.input, "input"),
            ("serialization", decl.output, "output"),
        ):
            key = _type_key(mode, ref)
            if key in results:
                pair.append(results[key])
                continue
            broken = [m for m in ref.modules if m in module_errors]
            loc = decl.location
            if broken:
                for module in broken:
                    if (module, loc.path) in reported_modules:
                        continue
                    reported_modules.add((module, loc.path))
                    diagnostics.append(
                        Diagnostic.at(
                            loc,
                            "error",
                            "PK701",
                            f"cannot import module {module!r} for the {what} type of "
                            f"queue {decl.name!r}: {module_errors[module]}",
                            hint="the generator imports type modules (not processor modules) "
                            "in a child process to build JSON Schemas; make the import work "
                            "without side effects",
                        )
                    )
            else:
                diagnostics.append(
                    Diagnostic.at(
                        loc,
                        "error",
                        "PK702",
                        f"no JSON Schema for the {what} type {ref.annotation!r} of "
                        f"queue {decl.name!r}: {type_errors.get(key, 'unknown error')}",
                        hint="payload and result types must be something pydantic can "
                        "validate: a BaseModel, TypedDict, dataclass, enum, builtin or a "
                        "generic of those",
                    )
                )
        if len(pair) == 2:
            schemas[decl.name] = (pair[0], pair[1])
    return SchemaResult(schemas=schemas, diagnostics=tuple(diagnostics))


def payload_field_problems(decl: ProcessorDecl, schema: Schema) -> Iterator[Diagnostic]:
    """PK705 for each payload field a `Dedupe.key` placeholder or a `RateLimit.group_key`
    names that the input type lacks (with the closest field), or that holds a list or an
    object, which cannot be part of a key. An input type whose fields are open (a
    `dict[str, Any]`) is not judged."""
    named: list[tuple[str, str]] = []
    if decl.options.dedupe is not None:
        key = decl.options.dedupe.key
        named += [(field, f"dedupe key {key!r}") for field in decl.options.dedupe.fields]
    if decl.options.rate_limit is not None and decl.options.rate_limit.group_key is not None:
        named.append((decl.options.rate_limit.group_key, "rate_limit group_key"))
    if not named:
        return
    resolved = _resolve(schema, schema)
    properties = resolved.get("properties")
    kind = resolved.get("type")
    if not isinstance(properties, dict):
        if kind in (None, "object"):
            return  # open fields (a dict), or a union: not judged here
        for field, what in named:
            yield Diagnostic.at(
                decl.location,
                "error",
                PAYLOAD_FIELD,
                f"queue {decl.name!r}: the {what} names the payload field {field!r}, but its "
                f"input type {decl.input.annotation!r} is not an object with fields "
                f"(a JSON {kind})",
                hint="take a model (or TypedDict) with that field, or use a key without "
                "placeholders",
            )
        return
    for field, what in named:
        if field not in properties:
            close = suggest(field, sorted(properties))
            yield Diagnostic.at(
                decl.location,
                "error",
                PAYLOAD_FIELD,
                f"queue {decl.name!r}: the {what} names the payload field {field!r}, which "
                f"its input type {decl.input.annotation!r} does not have (fields: "
                f"{', '.join(sorted(properties)) or 'none'})",
                hint=f"did you mean {close!r}?" if close else "name one of the input type's fields",
            )
            continue
        field_schema = _resolve(properties[field], schema)
        if field_schema.get("type") in ("array", "object"):
            yield Diagnostic.at(
                decl.location,
                "error",
                PAYLOAD_FIELD,
                f"queue {decl.name!r}: the {what} names the payload field {field!r}, which "
                f"holds a JSON {field_schema['type']}; a key is built from text, numbers, "
                "booleans and null",
                hint="name a scalar field (an id, a name)",
            )


def _resolve(schema: Any, root: Schema) -> dict[str, Any]:
    """`schema` with a local `$ref` (`#/$defs/Name`) followed, a few steps at most."""
    for _ in range(8):
        if not isinstance(schema, dict):
            return {}
        ref = schema.get("$ref")
        if not isinstance(ref, str) or not ref.startswith("#/$defs/"):
            return schema
        defs = root.get("$defs")
        schema = defs.get(ref.removeprefix("#/$defs/")) if isinstance(defs, dict) else None
    return {}


def _cache_file(config: Config, request: dict[str, Any]) -> Path:
    digest = hashlib.sha256()
    digest.update(json.dumps(request, sort_keys=True).encode())
    digest.update(f"{sys.version}\0{pydantic.VERSION}\0".encode())
    for entry in _fingerprint(Path(p) for p in request["sys_path"]):
        digest.update(entry.encode("utf-8", "surrogateescape"))
    return config.root / CACHE_FOLDER / "schemas" / f"{digest.hexdigest()[:32]}.json"


def _fingerprint(roots: Iterable[Path]) -> list[str]:
    """Path, size and mtime of every Python file under the import roots: any edit to a module
    a type could come from (or its dependencies inside the project) changes the cache key."""
    entries: list[str] = []
    for root in roots:
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIP_DIRS)
            for name in sorted(files):
                if name.endswith((".py", ".pyi", ".pth")):
                    path = os.path.join(folder, name)
                    try:
                        stat = os.stat(path)
                    except OSError:
                        continue
                    entries.append(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n")
    return entries


def _run_child(request: dict[str, Any], *, cwd: Path) -> tuple[dict[str, Any], Diagnostic | None]:
    command = [sys.executable, "-c", "from pikkugen.schemas import child_main; child_main()"]
    env = dict(os.environ)
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    with tempfile.TemporaryDirectory(prefix="pikkugen-schemas-") as scratch:
        answer_file = Path(scratch) / "answer.json"
        try:
            proc = subprocess.run(
                [*command, str(answer_file)],
                input=json.dumps(request),
                capture_output=True,
                text=True,
                cwd=cwd,
                env=env,
                timeout=CHILD_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            module = _last_import(exc.stderr)
            return {}, _child_failure(f"timed out after {CHILD_TIMEOUT_S:.0f} s", module)
        output = answer_file.read_text(encoding="utf-8") if answer_file.is_file() else ""
    if proc.returncode != 0 or not output:
        return {}, _child_failure(
            f"exited with status {proc.returncode}", _last_import(proc.stderr)
        )
    try:
        answer: dict[str, Any] = json.loads(output)
    except ValueError:
        return {}, _child_failure("wrote an unreadable answer", _last_import(proc.stderr))
    return answer, None


def _last_import(stderr: str | bytes | None) -> str | None:
    if isinstance(stderr, bytes):
        stderr = stderr.decode("utf-8", "replace")
    module = None
    for line in (stderr or "").splitlines():
        if line.startswith(_IMPORTING):
            module = line[len(_IMPORTING) :].strip()
    return module


def _child_failure(what: str, module: str | None) -> Diagnostic:
    during = f" while importing module {module!r}" if module else ""
    return Diagnostic(
        level="error",
        code="PK703",
        message=f"the schema process {what}{during}",
        hint="a type module must import quickly and without exiting the interpreter",
    )


# --- the child side -------------------------------------------------------------------------


def child_main() -> None:
    """Entry point of the child process: request on stdin, answer in the file named in argv.

    The answer goes to its own file, not stdout, so whatever user modules print cannot corrupt
    it (and a large answer cannot fill a pipe nobody reads yet); stdout is pointed at stderr.
    """
    answer_path = Path(sys.argv[1])
    request = json.loads(sys.stdin.read())
    sys.stdout = sys.stderr
    for entry in reversed(request["sys_path"]):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    answer = compute(request["types"])
    answer_path.write_text(json.dumps(answer), encoding="utf-8")


def compute(types: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Import each module once, then evaluate each annotation and ask pydantic for its schema."""
    import importlib

    modules: dict[str, Any] = {}
    module_errors: dict[str, str] = {}
    for name in sorted({m for t in types for m in t["modules"]}):
        print(f"{_IMPORTING}{name}", file=sys.stderr, flush=True)
        try:
            modules[name] = importlib.import_module(name)
        except BaseException as exc:  # SystemExit from user code is data too
            module_errors[name] = _describe(exc)
    schemas: dict[str, Schema] = {}
    errors: dict[str, str] = {}
    empty_errors: dict[str, str] = {}
    for item in types:
        ref = TypeRef(annotation=item["annotation"], modules=tuple(item["modules"]))
        key = _type_key(item["mode"], ref)
        if any(m in module_errors for m in ref.modules):
            continue
        namespace: dict[str, Any] = {}
        for name in ref.modules:
            top = name.partition(".")[0]
            namespace.setdefault(top, sys.modules.get(top))
        try:
            # The scanner rebuilt the annotation from names, subscripts and constants only.
            annotation = eval(ref.annotation, namespace)
            adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(annotation)
            schemas[key] = adapter.json_schema(mode=item["mode"])
        except BaseException as exc:
            errors[key] = _describe(exc)
            continue
        if item.get("check_empty"):
            try:
                adapter.validate_python({})
            except pydantic.ValidationError as exc:
                empty_errors[key] = _describe_validation(exc)
    return {
        "schemas": schemas,
        "errors": errors,
        "module_errors": module_errors,
        "empty_errors": empty_errors,
    }


def _describe_validation(exc: pydantic.ValidationError) -> str:
    """The first problem, located: `to: Field required` (not pydantic's multi-line text)."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    count = exc.error_count()
    more = f" (and {count - 1} more)" if count > 1 else ""
    return f"{where + ': ' if where else ''}{first['msg']}{more}"


def _describe(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {first[0]}" if first else type(exc).__name__
