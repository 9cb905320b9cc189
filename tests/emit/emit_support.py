"""Hand-built IR and configurations for the emitter tests (the scanner is tested apart)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pikku_queue.options import ProcessorOptions
from pikkugen.config import Config
from pikkugen.model import Location, ProcessorDecl, ScanResult, TypeRef

#: Queue names no scanner would accept, to prove the emitters cannot be injected into.
HOSTILE = [
    "",
    'a"b',
    "a'b",
    "it's \"quoted\" twice ''",
    '"""',
    "'''",
    "end\\",
    "new\nline",
    "carriage\rreturn\ttab",
    "nul\x00byte\x7f",
    "line\u2028separator",
    "lone \ud800 surrogate",
    "émoji 😀 and ünïcödé",
    "\\N{BULLET} \\x41 {braces} %s",
    "class",
    "2fa",
    "import os; os.system('x')",
    "queue_job",
]


def decl(
    name: str,
    *,
    input: str = "int",
    output: str = "str",
    modules: tuple[str, ...] = (),
    function: str = "app.jobs.handler",
    path: str = "src/app/jobs.py",
    line: int = 3,
    **options: Any,
) -> ProcessorDecl:
    return ProcessorDecl(
        name=name,
        function=function,
        module=function.rpartition(".")[0],
        input=TypeRef(annotation=input, modules=modules),
        output=TypeRef(annotation=output, modules=modules),
        is_async=True,
        location=Location(path=path, line=line, column=1),
        options=ProcessorOptions.model_validate(options),
    )


def scan_of(*decls: ProcessorDecl) -> ScanResult:
    return ScanResult(processors=tuple(sorted(decls, key=lambda d: d.name)))


def config_for(root: Path, **changes: Any) -> Config:
    values: dict[str, Any] = {
        "root": root,
        "paths": (root / "src",),
        "out": root / "src" / "gen",
        "out_package": "gen",
        "exclude": (),
        "runtimes": ("sqlite",),
        "services": None,
        "strict": False,
        "backend": None,
        "cache": False,
    }
    values.update(changes)
    return Config(**values)
