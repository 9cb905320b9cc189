"""Generate-time commands: `scan` (write or `--check`), `list`, `watch` and `client`.

Thin shells over `pikkugen.generate` and its sinks: each command turns flags into a `Config`,
runs the pure pipeline, prints diagnostics to stderr and exits with
`pikkugen.diagnostics.exit_code` (0 fine, 1 stale output, 2 any error).
"""

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from pikkugen.config import (
    Config,
    ConfigError,
    find_pyproject,
    load_config,
    no_project_message,
)
from pikkugen.model import Diagnostic, ProcessorDecl, ScanResult

PathsArgument = Annotated[
    list[Path] | None,
    typer.Argument(help="Files or folders to scan (default: `paths` of tool.pikkugen)."),
]
OutOption = Annotated[Path | None, typer.Option("--out", help="Folder of the generated package.")]
StrictOption = Annotated[
    bool | None,
    typer.Option(
        "--strict/--no-strict",
        help="Make options a configured runtime cannot honour errors, not warnings.",
    ),
]
RuntimeOption = Annotated[
    list[str] | None,
    typer.Option(
        "--runtime",
        help="A runtime to generate for and check against (repeatable; replaces the config's).",
    ),
]
NoCacheOption = Annotated[
    bool, typer.Option("--no-cache", help="Ignore and do not write .pikkugen_cache/.")
]


def register(app: typer.Typer) -> None:
    """Add this group's commands to `app`."""
    app.command("scan")(scan_command)
    app.command("list")(list_command)
    app.command("watch")(watch_command)
    app.command("client")(client_command)


def _emit_diagnostics(diagnostics: tuple[Diagnostic, ...] | list[Diagnostic]) -> None:
    from pikkugen.diagnostics import render_all, use_colour

    if diagnostics:
        text = render_all(diagnostics, colour=use_colour(sys.stderr))
        sys.stderr.write(text if text.endswith("\n") else text + "\n")


def _exit(diagnostics: tuple[Diagnostic, ...] | list[Diagnostic], *, stale: bool = False) -> None:
    from pikkugen.diagnostics import exit_code

    code = exit_code(list(diagnostics), stale=stale)
    if code:
        raise typer.Exit(code)


def _config(
    paths: list[Path] | None,
    *,
    out: Path | None = None,
    strict: bool | None = None,
    runtime: list[str] | None = None,
    no_cache: bool = False,
) -> Config:
    if not paths and find_pyproject(Path.cwd()) is None:
        # Outside a project, scanning the current folder could walk a whole disk (`/`) and
        # write a package and a cache where nobody asked: refuse, as worker and enqueue do.
        typer.echo(f"error: {no_project_message(Path.cwd())}", err=True)
        typer.echo("hint: or name the files or folders to scan explicitly", err=True)
        raise typer.Exit(2)
    try:
        return _load(paths, out=out, strict=strict, runtime=runtime, no_cache=no_cache)
    except ConfigError as exc:
        _emit_diagnostics([exc.to_diagnostic()])
        raise typer.Exit(2) from None


def _load(
    paths: list[Path] | None,
    *,
    out: Path | None,
    strict: bool | None,
    runtime: list[str] | None,
    no_cache: bool,
) -> Config:
    """The configuration, or ConfigError (watch reports it and keeps watching)."""
    # The project is the one around the scanned paths; without a [tool.pikkugen] there, the
    # current folder is the root (paths and the header's `source:` are relative to it).
    near = paths[0] if paths and find_pyproject(paths[0].resolve()) is not None else None
    return load_config(
        near,
        paths=paths or None,
        out=out,
        strict=strict,
        runtimes=runtime or None,
        cache=False if no_cache else None,
    )


def scan_command(
    paths: PathsArgument = None,
    out: OutOption = None,
    check: Annotated[
        bool,
        typer.Option("--check", help="Write nothing; exit 1 with a diff if output is stale."),
    ] = False,
    no_cache: NoCacheOption = False,
    strict: StrictOption = None,
    runtime: RuntimeOption = None,
) -> None:
    """Find queue processors and write the generated package (or check it is current)."""
    from pikkugen.emit.sinks import check_output, write_output
    from pikkugen.generate import generate

    config = _config(paths, out=out, strict=strict, runtime=runtime, no_cache=no_cache)
    result = generate(config)
    _emit_diagnostics(result.diagnostics)
    where = config.relative(config.out)
    if check:
        if result.has_errors:
            _exit(result.diagnostics)
        report = check_output(config, result)
        if report.is_stale:
            sys.stdout.write(report.diff)
            sys.stderr.write(
                f"pikkugen: {len(report.stale)} generated file(s) in {where} are stale; "
                "run `pikkugen scan` to update them\n"
            )
        _exit(result.diagnostics, stale=report.is_stale)
        return
    written = write_output(config, result)
    _emit_diagnostics(written.diagnostics)
    if written.refused:
        done = len(written.written) + len(written.deleted)
        state = f"only {done} file(s) updated in" if done else "nothing written to"
        sys.stderr.write(f"pikkugen: {state} {where}\n")
        _exit([*result.diagnostics, *written.diagnostics])
        raise typer.Exit(2)
    count = len(result.scan.processors)
    typer.echo(
        f"pikkugen: {count} queue(s); {len(written.written)} file(s) written, "
        f"{len(written.unchanged)} unchanged, {len(written.deleted)} deleted in {where}"
    )
    _exit(result.diagnostics)


def processor_json(decl: ProcessorDecl) -> dict[str, Any]:
    """One processor as `pikkugen list --format json` shows it (the README documents it)."""
    return {
        "name": decl.name,
        "function": decl.function,
        "input": decl.input.annotation,
        "output": decl.output.annotation,
        "location": decl.location.model_dump(mode="json"),
        "options": decl.options.model_dump(mode="json"),
    }


def ir_json(scan: ScanResult, diagnostics: list[Diagnostic]) -> dict[str, Any]:
    return {
        "processors": [processor_json(p) for p in sorted(scan.processors, key=lambda p: p.name)],
        "diagnostics": [
            d.model_dump(mode="json") for d in sorted(diagnostics, key=Diagnostic.sort_key)
        ],
    }


def list_command(
    paths: PathsArgument = None,
    format: Annotated[
        Literal["table", "json"], typer.Option("--format", help="table (default) or json.")
    ] = "table",
    no_cache: NoCacheOption = False,
    strict: StrictOption = None,
    runtime: RuntimeOption = None,
) -> None:
    """Show the queue processors found, as a table or as the IR's JSON."""
    from pikkugen.generate import check_ir, scan_project

    config = _config(paths, strict=strict, runtime=runtime, no_cache=no_cache)
    scan = scan_project(config)
    diagnostics = [*scan.diagnostics, *check_ir(config, scan)]
    if format == "json":
        sys.stdout.write(json.dumps(ir_json(scan, diagnostics), indent=2) + "\n")
    else:
        _emit_diagnostics(diagnostics)
        _print_table(scan)
    _exit(diagnostics)


def _options_summary(decl: ProcessorDecl) -> str:
    """The options that differ from the defaults, nested ones flattened (`retry.attempts=3`)."""
    defaults = _flatten(type(decl.options)().model_dump(mode="json"))
    current = _flatten(decl.options.model_dump(mode="json"))
    changed = [
        f"{key}={json.dumps(value, separators=(',', ':'))}"
        for key, value in current.items()
        # a nested option's unset fields (`repeat.every` of a cron repeat) say nothing
        if (key not in defaults and value is not None)
        or (key in defaults and defaults[key] != value)
    ]
    return ", ".join(changed) or "defaults"


def _flatten(options: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in options.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


#: Below this many columns `list` prints one block per queue instead of a table.
WIDE_TABLE = 120


def _print_table(scan: ScanResult) -> None:
    from rich.cells import cell_len
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    if console.width < WIDE_TABLE:
        _print_blocks(scan, console.width)
        return
    headers = ("queue", "function", "input -> output", "options", "location")
    rows = []
    for decl in sorted(scan.processors, key=lambda p: p.name):
        loc = decl.location
        rows.append(
            [
                decl.name,
                decl.function,
                f"{decl.input.annotation} ->\n{decl.output.annotation}",
                _options_summary(decl).replace(", ", ",\n"),  # one option per line
                f"{loc.path}:{loc.line}:{loc.column}",
            ]
        )
    widths = [
        max(
            cell_len(line)
            for cell in [header, *(row[i] for row in rows)]
            for line in cell.split("\n")
        )
        for i, header in enumerate(headers)
    ]
    # No cell is ever cut or folded (`"exponential",` over two lines): a table that does not
    # fit unwrapped (each column padded by 1 on both sides, n + 1 borders) is printed as blocks.
    if sum(widths) + 3 * len(widths) + 1 > console.width:
        _print_blocks(scan, console.width)
        return
    table = Table(title=f"{len(scan.processors)} queue processor(s)")
    for header in headers:
        table.add_column(header, no_wrap=True)
    for row in rows:
        # Text, not markup: `dict[str, int]` must not be read as a style tag.
        table.add_row(*(Text(cell) for cell in row))
    console.print(table)


def _print_blocks(scan: ScanResult, width: int) -> None:
    """`list` on a narrow terminal: the queue and where, then what it runs, then its options,
    wrapped at option boundaries (an 80-column terminal reads it without a folded word)."""
    import textwrap

    typer.echo(f"{len(scan.processors)} queue processor(s)")
    for decl in sorted(scan.processors, key=lambda p: p.name):
        loc = decl.location
        typer.echo(f"\n{decl.name}  {loc.path}:{loc.line}:{loc.column}")
        typer.echo(f"  {decl.function}: {decl.input.annotation} -> {decl.output.annotation}")
        for line in textwrap.wrap(
            _options_summary(decl),
            width=max(width, 40),
            initial_indent="  ",
            subsequent_indent="  ",
            break_long_words=False,
            break_on_hyphens=False,
        ):
            typer.echo(line)


def watch_command(
    paths: PathsArgument = None,
    out: OutOption = None,
    no_cache: NoCacheOption = False,
    strict: StrictOption = None,
    runtime: RuntimeOption = None,
) -> None:
    """Regenerate whenever a scanned file or pyproject.toml changes (Ctrl-C to stop)."""
    from pikkugen.emit.watch import Round, watch

    load = watch_loader(paths, out=out, strict=strict, runtime=runtime, no_cache=no_cache)

    def show(round_: Round) -> None:
        if round_.error is not None:
            _emit_diagnostics([round_.error.to_diagnostic()])
            return
        assert round_.result is not None and round_.report is not None
        _emit_diagnostics([*round_.result.diagnostics, *round_.report.diagnostics])
        report = round_.report
        state = (
            "not written (errors)"
            if report.refused
            else f"{len(report.written)} written, {len(report.deleted)} deleted"
        )
        typer.echo(f"pikkugen: {len(round_.result.scan.processors)} queue(s); {state}")

    typer.echo("pikkugen: watching for changes (Ctrl-C to stop)")
    watch(load, show)


def watch_loader(
    paths: list[Path] | None,
    *,
    out: Path | None = None,
    strict: bool | None = None,
    runtime: list[str] | None = None,
    no_cache: bool = False,
) -> Callable[[], Config]:
    """The configuration loader `watch` calls at start and on each pyproject.toml change.

    Only a configuration broken at start ends the command (exit 2); one broken while
    watching raises ConfigError, which `watch` reports before it waits for the fix.
    """
    first = _config(paths, out=out, strict=strict, runtime=runtime, no_cache=no_cache)
    loads = 0

    def load() -> Config:
        nonlocal loads
        loads += 1
        if loads == 1:
            return first
        return _load(paths, out=out, strict=strict, runtime=runtime, no_cache=no_cache)

    return load


def client_command(
    schemas_dir: Annotated[
        Path, typer.Argument(help="A `schemas/` folder written by `pikkugen scan`.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder of the client package to write.")],
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 with a diff if stale.")
    ] = False,
    backend: Annotated[
        str | None,
        typer.Option(
            "--backend",
            help="Backend URL the client enqueues into (default: the worker project's"
            " configured backend, from the schemas folder).",
        ),
    ] = None,
) -> None:
    """Write a typed client package from a generated schemas/ folder alone.

    For a service that only enqueues and cannot import the worker's code.
    """
    from pikkugen.emit.sinks import check_output, write_output
    from pikkugen.standalone import generate_standalone, standalone_config

    try:
        config = standalone_config(schemas_dir, out, backend)
    except ConfigError as exc:
        _emit_diagnostics([exc.to_diagnostic()])
        raise typer.Exit(2) from None
    result = generate_standalone(schemas_dir, config)
    _emit_diagnostics(result.diagnostics)
    if result.has_errors:
        _exit(result.diagnostics)
    if check:
        report = check_output(config, result)
        sys.stdout.write(report.diff)
        _exit(result.diagnostics, stale=report.is_stale)
        return
    written = write_output(config, result)
    _emit_diagnostics(written.diagnostics)
    if written.refused:
        raise typer.Exit(2)
    queues = sum(1 for path in result.files if path.startswith("models/q_"))
    typer.echo(
        f"pikkugen: client for {queues} queue(s); {len(written.written)} file(s) written to "
        f"{config.relative(config.out)}"
    )
