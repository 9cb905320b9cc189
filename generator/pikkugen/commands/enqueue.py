"""`pikkugen enqueue QUEUE --data JSON`: one job from the command line, validated against the
queue's input type and the per-job options model every enqueue path uses (the typed client's
`TypedQueue.enqueue`), so a payload the worker would refuse is refused here instead."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from pikku_queue.adapters import masked_url
from pikku_queue.backend import Backend
from pikku_queue.client import TypedQueue, enqueue_options
from pikku_queue.errors import PikkuQueueError

from pikkugen.commands.project import (
    BackendOption,
    backend_url,
    complete_queue,
    fail,
    load_processors,
    load_registry,
    on_backend,
    project_config,
)


def register(app: typer.Typer) -> None:
    """Add this command to `app`."""
    app.command("enqueue")(enqueue)


def enqueue(
    queue: Annotated[str, typer.Argument(help="Queue name.", autocompletion=complete_queue)],
    data: Annotated[
        str,
        typer.Option(
            "--data",
            metavar="JSON",
            show_default=False,
            help="The payload as JSON (default: {}, an empty object, for an input type whose "
            "fields all have defaults).",
        ),
    ] = "{}",
    delay: Annotated[int | None, typer.Option("--delay", help="Delay in ms.")] = None,
    priority: Annotated[
        int | None,
        typer.Option("--priority", help="1 (the highest) to 2097151 (the lowest)."),
    ] = None,
    job_id: Annotated[
        str | None,
        typer.Option(
            "--job-id",
            help="Idempotency key (an existing id is reused), e.g. order-123: at most 128 "
            "ASCII letters, digits and punctuation, no ':', not an integer.",
        ),
    ] = None,
    cron: Annotated[str | None, typer.Option("--cron", help="Repeat on a cron schedule.")] = None,
    every: Annotated[int | None, typer.Option("--every", help="Repeat every N ms.")] = None,
    backend: BackendOption = None,
) -> None:
    """Validate a payload against the queue's input type and enqueue it."""
    config = project_config()
    registry, generated_url = load_registry(config)
    try:
        registry.get(queue)
        payload = json.loads(data)
    except json.JSONDecodeError as exc:
        raise fail(f"--data is not valid JSON: {exc}") from None
    except PikkuQueueError as exc:
        raise fail(str(exc)) from None
    repeat = {"cron": cron, "every": every} if cron is not None or every is not None else None
    try:  # the one per-job options model every enqueue path validates with
        options = enqueue_options(delay=delay, priority=priority, job_id=job_id, repeat=repeat)
    except PikkuQueueError as exc:
        raise fail(str(exc)) from None
    [processor] = load_processors(registry, [queue])
    typed: TypedQueue[Any, Any] = TypedQueue(
        queue, processor.input_adapter, processor.output_adapter, processor.options
    )
    url = backend_url(backend, config, generated_url)

    async def send(target: Backend) -> str:
        handle = await typed.enqueue(
            payload,
            delay=options.delay,
            priority=options.priority,
            job_id=options.job_id,
            repeat=options.repeat,
            backend=target,
        )
        return handle.id

    typer.echo(on_backend(url, send))
    typer.echo(f"enqueued on {queue!r} in {masked_url(url)}", err=True)
