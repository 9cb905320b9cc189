"""`pikkugen worker`: the runtime's one runner (`pikku_queue.runner`, also `python -m
pikku_queue worker`) on the project's generated registry, plus the rich live display
(`commands.display`). Registry import, user-code error lines, the backend URL order and the
signal rule are the runner's; this module only finds the project's registry and backend.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from pikku_queue import runner
from rich.console import Console
from rich.logging import RichHandler

from pikkugen.commands.display import live_display
from pikkugen.commands.project import (
    BackendOption,
    backend_url,
    fail,
    import_roots,
    load_registry,
    project_config,
)


def register(app: typer.Typer) -> None:
    """Add this command to `app`."""
    app.command("worker")(worker)


def worker(
    backend: BackendOption = None,
    queues: Annotated[
        str | None, typer.Option("--queues", help="Comma-separated queues (default: all).")
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency", min=1, help="Jobs at once per queue (default: each processor's)."
        ),
    ] = None,
    burst: Annotated[
        bool, typer.Option("--burst", help="Exit when the queues are drained.")
    ] = False,
    grace: Annotated[
        float,
        typer.Option("--grace", min=0, help="Seconds active jobs get to finish on stop."),
    ] = runner.DEFAULT_GRACE_S,
    lease_ms: Annotated[
        int,
        typer.Option(
            "--lease-ms", min=100, help="Job lease; a dead worker's jobs return after it."
        ),
    ] = runner.DEFAULT_LEASE_MS,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            min=0,
            help="Serve Prometheus /metrics on this port (needs the \\[metrics] extra).",
        ),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option("--metrics-host", help="Address of the /metrics server.")
    ] = runner.DEFAULT_METRICS_HOST,
    registry_package: Annotated[
        str | None,
        typer.Option(
            "--registry",
            metavar="PKG",
            help="The generated package to serve (default: the one \\[tool.pikkugen] out names).",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="The generated package's folder, if `pikkugen scan --out` put it there."
        ),
    ] = None,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict", help="Refuse to start on a registry older than its sources (else warn)."
        ),
    ] = False,
    processes: Annotated[
        int,
        typer.Option(
            "--processes",
            min=1,
            help="Run N worker processes, each with its own backend connection; with N > 1 "
            "their plain log lines, prefixed \\[i], replace the live display; --metrics-port "
            "PORT serves process i on PORT+i.",
        ),
    ] = 1,
) -> None:
    """Run the processors of the generated registry until stopped (or drained, with --burst).

    The same runner as `python -m pikku_queue worker`, plus a live display."""
    config = project_config(out)
    registry, generated_url = load_registry(config, registry_package)
    flags = runner.WorkerFlags(
        backend=backend_url(backend, config, generated_url),
        queues=queues,
        concurrency=concurrency,
        burst=burst,
        strict=strict,
        grace=grace,
        lease_ms=lease_ms,
        metrics_port=metrics_port,
        metrics_host=metrics_host,
        processes=processes,
        events_hook=config.events,  # [tool.pikkugen] events: the user's hook
    )
    try:
        run = runner.prepare(registry, None, flags)
    except runner.StartError as exc:
        raise fail(str(exc)) from None
    if processes > 1:  # the runner's children; their lines, prefixed, instead of the display
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        package = registry_package or config.out_package
        roots = [str(root) for root in import_roots(config)]
        code = runner.run_processes(run, package, path=roots)
        if code:
            raise typer.Exit(code)
        return
    console = Console(stderr=False)
    tty = console.is_terminal
    logging.basicConfig(
        level=logging.INFO,
        format="%(message)s" if tty else "%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=[RichHandler(console=console, show_path=False)] if tty else None,
    )
    code = runner.run_worker(run, live_display(console, tty))
    if code:
        raise typer.Exit(code)
