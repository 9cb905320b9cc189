"""The generator as one pure function: `generate(config) -> GenerateResult(files, diagnostics)`.

scan -> IR checks -> schemas -> emitters. Nothing here touches the output folder: writing,
`--check` and watch are sinks over the same result (`pikkugen.emit.sinks`), so what CI checks
is exactly what a developer writes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from pikkugen.checks import check_runtimes
from pikkugen.config import Config
from pikkugen.config_checks import check_config
from pikkugen.emit.base import EmitInput
from pikkugen.emit.client import client_name_clashes
from pikkugen.emit.select import emitters_for
from pikkugen.model import Diagnostic, ScanResult
from pikkugen.schemas import build_schemas

MANIFEST = ".pikkugen-manifest.json"
CACHE_FOLDER = ".pikkugen_cache"
DUPLICATE_OUTPUT = "PK505"
BAD_OUTPUT_PATH = "PK506"


@dataclass(frozen=True)
class GenerateResult:
    #: relative path inside `config.out` (posix) -> file text, the manifest included.
    files: dict[str, str] = field(default_factory=dict)
    diagnostics: tuple[Diagnostic, ...] = ()
    scan: ScanResult = field(default_factory=ScanResult)

    @property
    def has_errors(self) -> bool:
        return any(d.is_error for d in self.diagnostics)


def scan_project(config: Config) -> ScanResult:
    """Run the scanner with the configuration's paths, exclusions and cache. The output
    folder is never scanned: generated wiring may call the declaration API itself."""
    from pikkugen.scanner import scan

    exclude = list(config.exclude)
    if config.root in config.out.parents:
        exclude.append(f"{config.out.relative_to(config.root).as_posix()}/*")
    return scan(
        config.paths,
        root=config.root,
        exclude=exclude,
        cache_dir=(config.root / CACHE_FOLDER) if config.cache else None,
        max_file_bytes=config.max_file_bytes,
    )


def check_ir(config: Config, scan: ScanResult) -> list[Diagnostic]:
    """Diagnostics about the IR that need the configuration (no imports), and about the
    configuration itself (the services factory is looked up in the scanned files)."""
    return [
        *check_runtimes(config, scan.processors),
        *client_name_clashes(scan.processors),
        *check_config(config),
    ]


def generate(config: Config, *, scan: ScanResult | None = None) -> GenerateResult:
    """Everything the output folder should hold, and every problem found on the way.

    Files are produced even when there are errors (for inspection); the write sink refuses
    to write them then.
    """
    if scan is None:
        scan = scan_project(config)
    diagnostics = [*scan.diagnostics, *check_ir(config, scan)]
    schemas = build_schemas(config, scan.processors)
    diagnostics.extend(schemas.diagnostics)
    emitters, notes = emitters_for(config)
    diagnostics.extend(notes)
    data = EmitInput(config=config, scan=scan, schemas=schemas.schemas)
    files: dict[str, str] = {}
    for name, emitter in emitters:
        for path, text in sorted(emitter(data).items()):
            problem = output_path_problem(path)
            if problem is not None or path == MANIFEST:
                diagnostics.append(
                    Diagnostic(
                        level="error",
                        code=BAD_OUTPUT_PATH,
                        message=f"emitter {name!r} produced an invalid path {path!r}: "
                        f"{problem or 'reserved for the manifest'}",
                    )
                )
            elif path in files:
                diagnostics.append(
                    Diagnostic(
                        level="error",
                        code=DUPLICATE_OUTPUT,
                        message=f"emitter {name!r} writes {path!r}, already written by another",
                    )
                )
            else:
                files[path] = text
    files[MANIFEST] = manifest_text(files)
    ordered = dict(sorted(files.items()))
    return GenerateResult(
        files=ordered,
        diagnostics=tuple(sorted(diagnostics, key=Diagnostic.sort_key)),
        scan=scan,
    )


def output_path_problem(path: str) -> str | None:
    """Why `path` may not be written inside the output folder (None: it may)."""
    pure = PurePosixPath(path)
    if not path or pure.is_absolute() or "\\" in path:
        return "not a relative posix path"
    if any(part in ("", ".", "..") for part in path.split("/")):
        return "must not hold '.', '..' or empty parts"
    return None


def manifest_text(files: dict[str, str]) -> str:
    """The list of files the generator owns in the output folder: what was generated last
    time and is no longer is deleted on write and reported by `--check`."""
    owned = sorted(p for p in files if p != MANIFEST)
    return json.dumps({"generator": "pikkugen", "files": owned}, indent=2) + "\n"


def read_manifest(text: str) -> list[str]:
    """Owned paths from a manifest's text; a damaged manifest owns nothing (never delete on
    a guess)."""
    try:
        data = json.loads(text)
    except ValueError:
        return []
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, list):
        return []
    return [f for f in files if isinstance(f, str) and output_path_problem(f) is None]
