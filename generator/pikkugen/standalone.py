"""`pikkugen client SCHEMAS_DIR --out PKG`: a typed client for a code base that only enqueues.

A service in another repository cannot import the worker's types. It gets the generated
`schemas/` folder instead: datamodel-code-generator turns each queue's input and output JSON
Schemas into pydantic models (one module per queue, so two queues' same-named types cannot
clash), and the same client and registry emitters as the main generation write the typed
functions on top. Options come from `schemas/queues.json`, so defaults such as a processor's
delay or priority still apply. Nothing here imports the worker's code.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pikku_queue.options import ProcessorOptions

from pikkugen.config import Config, package_name_for
from pikkugen.emit import client, package, registry
from pikkugen.emit.base import EmitInput, header
from pikkugen.emit.names import assign_identifiers
from pikkugen.emit.schema_files import INDEX, INDEX_VERSION
from pikkugen.generate import MANIFEST, GenerateResult, manifest_text
from pikkugen.model import Diagnostic, Location, ProcessorDecl, ScanResult, TypeRef

BAD_INDEX = "PK401"
MODEL_FAILED = "PK402"
WRAPPER = "PikkuQueueTypes"


@dataclass(frozen=True)
class _Queue:
    name: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    options: ProcessorOptions


def standalone_config(schemas_dir: Path, out: Path, backend: str | None = None) -> Config:
    """A configuration for the client emitters: nothing to scan, no runtime wiring. The
    backend is `backend` (the `--backend` flag), else the worker project's configured one,
    as `schemas/queues.json` carries it."""
    root = Path.cwd().resolve()
    configured, _ = _index_backend(schemas_dir)
    out = out.resolve()
    return Config(
        root=root,
        paths=(schemas_dir.resolve(),),
        out=out,
        out_package=package_name_for(out),
        exclude=(),
        runtimes=(),
        services=None,
        strict=False,
        backend=backend or configured,
        cache=False,
    )


def _index_backend(schemas_dir: Path) -> tuple[str | None, Path | None]:
    """The worker project's configured backend and root, as its `queues.json` names them
    (None where the index is unreadable or older: `_read_index` reports that)."""
    try:
        index = json.loads((schemas_dir / INDEX).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, None
    if not isinstance(index, dict):
        return None, None
    backend, hop = index.get("backend"), index.get("root")
    root = (schemas_dir / hop).resolve() if isinstance(hop, str) else None
    return (backend if isinstance(backend, str) else None), root


def generate_standalone(schemas_dir: Path, config: Config) -> GenerateResult:
    """Every file of the standalone client package, or the diagnostics why not."""
    queues, problems = _read_index(schemas_dir, config)
    if problems:
        return GenerateResult(diagnostics=tuple(problems))
    stems = assign_identifiers(q.name for q in queues)
    files: dict[str, str] = {}
    decls: list[ProcessorDecl] = []
    diagnostics: list[Diagnostic] = []
    source = config.relative(schemas_dir.resolve())
    for queue in queues:
        module_name = f"q_{stems[queue.name]}"
        dotted = f"{config.out_package}.models.{module_name}"
        try:
            text, in_alias, out_alias = models_module(queue, source, stems[queue.name])
        except Exception as exc:  # the generator library's failure is data for the user
            diagnostics.append(
                Diagnostic(
                    level="error",
                    code=MODEL_FAILED,
                    message=f"cannot build models for queue {queue.name!r}: "
                    f"{type(exc).__name__}: {exc}",
                    path=f"{source}/{INDEX}",
                )
            )
            continue
        files[f"models/{module_name}.py"] = text
        decls.append(
            ProcessorDecl(
                name=queue.name,
                function="",
                module=dotted,
                input=_ref(dotted, in_alias),
                output=_ref(dotted, out_alias),
                is_async=True,
                location=Location(path=f"{source}/{INDEX}", line=1, column=1),
                options=queue.options,
            )
        )
    if diagnostics:
        return GenerateResult(diagnostics=tuple(diagnostics))
    data = EmitInput(config=config, scan=ScanResult(processors=tuple(decls)), schemas={})
    for emitter in (package.emit, client.emit):
        files.update(emitter(data))
    # A relative SQLite path is anchored at the worker project's root, as its workers do.
    _, project = _index_backend(schemas_dir)
    files.update(registry.emit_anchored(data, project or config.root))
    files["models/__init__.py"] = header(source) + '"""One module of models per queue."""\n'
    files[MANIFEST] = manifest_text(files)
    return GenerateResult(files=dict(sorted(files.items())))


def _ref(module: str, alias: str | None) -> TypeRef:
    if alias is None:
        return TypeRef(annotation="None")
    return TypeRef(annotation=f"{module}.{alias}", modules=(module,))


def _read_index(schemas_dir: Path, config: Config) -> tuple[list[_Queue], list[Diagnostic]]:
    index_path = schemas_dir / INDEX
    where = config.relative(index_path.resolve())

    def problem(message: str) -> tuple[list[_Queue], list[Diagnostic]]:
        hint = "point at the `schemas/` folder `pikkugen scan` generated"
        return [], [
            Diagnostic(level="error", code=BAD_INDEX, message=message, hint=hint, path=where)
        ]

    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return problem(f"no {INDEX} in {schemas_dir.as_posix()!r}")
    except (OSError, ValueError) as exc:
        return problem(f"cannot read {INDEX}: {exc}")
    if not isinstance(index, dict) or index.get("version") != INDEX_VERSION:
        return problem(f"{INDEX} is not a version {INDEX_VERSION} queue index")
    queues: list[_Queue] = []
    for entry in index.get("queues", []):
        try:
            name = entry["name"]
            files = [entry["input_schema"], entry["output_schema"]]
            if any(not isinstance(f, str) or Path(f).name != f or f in (".", "..") for f in files):
                raise ValueError("schema file names must be plain names inside the folder")
            schemas = [json.loads((schemas_dir / f).read_text(encoding="utf-8")) for f in files]
            options = ProcessorOptions.model_validate(entry.get("options", {}))
        except (KeyError, TypeError, OSError, ValueError) as exc:
            return problem(f"bad entry in {INDEX}: {type(exc).__name__}: {exc}")
        queues.append(_Queue(str(name), schemas[0], schemas[1], options))
    return sorted(queues, key=lambda q: q.name), []


def combined_schema(input_schema: dict[str, Any], output_schema: dict[str, Any]) -> dict[str, Any]:
    """One schema whose object has `input` and `output` properties, sharing one `$defs`.

    A top-level model or enum is moved into `$defs` under its title, so its class keeps the
    user's name (`Email`, not `Input`); other shapes (`int`, `list[Item]`) stay inline and
    become plain annotations.
    """
    defs: dict[str, Any] = {}
    props: dict[str, Any] = {}
    for key, original in (("input", input_schema), ("output", output_schema)):
        schema = dict(original)
        for name, definition in schema.pop("$defs", {}).items():
            defs.setdefault(name, definition)
        title = schema.get("title")
        if isinstance(title, str) and title.isidentifier() and _is_named_type(schema):
            name = title
            while name in defs and defs[name] != schema:
                name = f"{name}{key.capitalize()}"
            defs[name] = schema
            props[key] = {"$ref": f"#/$defs/{name}"}
        else:
            props[key] = schema
    return {
        "title": WRAPPER,
        "type": "object",
        "properties": props,
        "required": ["input", "output"],
        "$defs": dict(sorted(defs.items())),
    }


def _is_named_type(schema: dict[str, Any]) -> bool:
    return "enum" in schema or (schema.get("type") == "object" and "properties" in schema)


def models_module(queue: _Queue, source: str, stem: str) -> tuple[str, str | None, str | None]:
    """The models module's text and the names of its input and output type aliases (None
    where the type is `None` itself)."""
    from datamodel_code_generator import generate
    from datamodel_code_generator.enums import DataModelType, InputFileType
    from datamodel_code_generator.format import Formatter, PythonVersion
    from datamodel_code_generator.parser import LiteralType

    code = generate(
        json.dumps(combined_schema(queue.input_schema, queue.output_schema)),
        input_file_type=InputFileType.JsonSchema,
        output_model_type=DataModelType.PydanticV2BaseModel,
        target_python_version=PythonVersion.PY_311,
        disable_timestamp=True,
        formatters=[Formatter.BUILTIN],
        use_standard_collections=True,
        use_union_operator=True,
        use_double_quotes=True,
        enum_field_as_literal=LiteralType.All,
    )
    if not isinstance(code, str):
        raise TypeError("datamodel-code-generator returned several modules")
    tree = ast.parse(code)
    defined = {
        target.id
        for node in tree.body
        for target in (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign)
            else []
        )
        if isinstance(target, ast.Name)
    } | {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    fields = _wrapper_fields(tree, code)
    aliases = []
    names: list[str | None] = []
    # Named after the queue, so the client can import every queue's aliases side by side.
    camel = "".join(part.capitalize() for part in stem.split("_"))
    camel = camel if camel[:1].isalpha() else f"Q{camel}"
    for key, base in (("input", f"{camel}Input"), ("output", f"{camel}Output")):
        if fields[key] == "None":
            names.append(None)  # `X = None` is no type alias to mypy: the client writes None
            continue
        name = base
        while name in defined:
            name += "_"
        names.append(name)
        aliases.append(f"{name} = {fields[key]}")
    lines = code.splitlines()
    while lines and (lines[0].startswith("#") or not lines[0].strip()):
        lines.pop(0)  # datamodel-code-generator's own header
    body = "\n".join(lines)
    text = (
        header(source)
        + '"""Models of one queue\'s payload and result, made from its JSON Schemas."""\n\n'
        + body.rstrip()
        + "".join(f"\n\n\n{line}" if i == 0 else f"\n{line}" for i, line in enumerate(aliases))
        + "\n"
    )
    return text, names[0], names[1]


def _wrapper_fields(tree: ast.Module, code: str) -> dict[str, str]:
    """The wrapper model's `input` and `output` annotations, as datamodel-code-generator
    wrote them (its quoting, which ruff keeps), joined onto one line."""
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == WRAPPER:
            found = {
                item.target.id: _one_line(ast.get_source_segment(code, item.annotation) or "")
                for item in node.body
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
            }
            if {"input", "output"} <= set(found):
                return found
    raise ValueError("the generated module has no input/output wrapper model")


def _one_line(annotation: str) -> str:
    if "\n" not in annotation:
        return annotation
    return re.sub(r",\s*([\])])", r"\1", " ".join(annotation.split()))
