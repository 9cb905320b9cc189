"""`pikkugen monitor`: serve the web dashboard (`pikkugen.web_monitor.app`) for a backend.

Its queues are the generated registry's and their dead-letter queues; its backend URL is
found as for `worker` (`--backend`, `$PIKKU_QUEUE_URL`, `[tool.pikkugen] backend`, the
registry's). Starlette and uvicorn come with the `[monitor]` extra.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from pikku_queue.adapters import masked_url
from pikku_queue.install import install_hint

from pikkugen.commands.project import (
    BackendOption,
    backend_url,
    fail,
    load_registry,
    project_config,
)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def monitor(
    backend: BackendOption = None,
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="Address to bind. Anything but 127.0.0.1, ::1 or localhost needs a token.",
        ),
    ] = DEFAULT_HOST,
    port: Annotated[int, typer.Option("--port", min=0, max=65535)] = DEFAULT_PORT,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            help="Require this token (Authorization: Bearer, or ?token= once). Visible to "
            "other users in `ps`: prefer $PIKKU_MONITOR_TOKEN or --token-file.",
        ),
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option(
            "--token-file",
            help="Read the token from this file (its first line), e.g. one only you can read.",
            dir_okay=False,
        ),
    ] = None,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            help="Another name the monitor is reached by (name or name:port; repeatable), e.g. "
            "behind a reverse proxy. Requests naming any other host get 421.",
        ),
    ] = None,
) -> None:
    """Serve a live dashboard of the queues: counts, throughput, latency, jobs, dead letters."""
    try:
        import uvicorn

        from pikkugen.web_monitor.app import create_app
        from pikkugen.web_monitor.auth import TOKEN_ENVIRONMENT_VARIABLE, is_loopback
        from pikkugen.web_monitor.config import MonitorConfig
        from pikkugen.web_monitor.hosts import HostRule
    except ImportError as exc:
        raise fail(
            f"pikkugen monitor needs Starlette and uvicorn ({exc}): "
            + install_hint("pikkugen", "monitor")
        ) from None
    config = project_config()
    registry, generated_url = load_registry(config)
    url = backend_url(backend, config, generated_url)
    token = _token(token, token_file) or os.environ.get(TOKEN_ENVIRONMENT_VARIABLE) or None
    if not is_loopback(host) and token is None:
        raise fail(
            f"--host {host} is not loopback: anyone who reaches it could replay jobs; give "
            f"${TOKEN_ENVIRONMENT_VARIABLE}, --token-file or --token"
        )
    allowed = tuple(allowed_host or ())
    try:
        HostRule.of(host, allowed)
    except ValueError as exc:
        raise fail(str(exc)) from None
    names = registry.names()
    app = create_app(
        MonitorConfig(
            url=url,
            queues=names,
            dead_letter_queues={n: registry.get(n).options.dead_letter_queue for n in names},
            token=token,
            host=host,
            allowed_hosts=allowed,
        )
    )
    shown = f"[{host}]" if ":" in host else host
    typer.echo(
        f"monitor of {masked_url(url)} on http://{shown}:{port}/" + ("?token=…" if token else "")
    )
    uvicorn.run(app, host=host, port=port, log_level="warning")


def _token(given: str | None, path: Path | None) -> str | None:
    """`--token`, else the first line of `--token-file` (an empty or unreadable file is an
    error: a monitor that silently ran without its token would be open)."""
    if given or path is None:
        return given
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"--token-file {path}: {exc}") from None
    token = lines[0].strip() if lines else ""
    if not token:
        raise fail(f"--token-file {path} is empty")
    return token


def register(app: typer.Typer) -> None:
    app.command("monitor")(monitor)
