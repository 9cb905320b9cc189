"""`pikkugen dlq list|replay QUEUE`: read and redrive a dead-letter queue.

QUEUE names a processor's queue (its `dead_letter_queue`, only the records that came from
it) or a dead-letter queue itself (every record in it).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from pikku_queue.adapters import masked_url
from pikku_queue.backend import Backend
from pikku_queue.records import DeadLetterRecord
from pikku_queue.registry import Registry, did_you_mean

from pikkugen.commands.project import (
    BackendOption,
    backend_url,
    complete_dead_letter_queue,
    fail,
    load_registry,
    on_backend,
    project_config,
)

dlq_app = typer.Typer(help="Inspect and redrive dead-letter queues.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the `dlq` group to `app`."""
    app.add_typer(dlq_app, name="dlq")


class _Target:
    """What QUEUE names: the dead-letter queue to read, the source queue to filter its records
    by, and, for a name the registry does not declare, the names it does (for the error)."""

    def __init__(self, registry: Registry, queue: str) -> None:
        self.queue = queue
        self.source: str | None = None
        self.undeclared: list[str] | None = None
        if queue in registry.names():
            dlq = registry.get(queue).options.dead_letter_queue
            if dlq is None:
                raise fail(
                    f"queue {queue!r} has no dead_letter_queue: its failed jobs end 'failed'"
                )
            self.dlq, self.source = dlq, queue
            return
        self.dlq = queue
        declared = {
            dlq
            for name in registry.names()
            if (dlq := registry.get(name).options.dead_letter_queue) is not None
        }
        if queue not in declared:
            self.undeclared = sorted({*registry.names(), *declared})

    async def check(self, target: Backend) -> None:
        """A name no processor declares is accepted only when the backend holds dead letters
        under it (a queue a processor used to dead-letter to); else it is a typo, refused with
        a did-you-mean instead of listing an empty queue."""
        if self.undeclared is None or await target.dead_letters(self.dlq, 1):
            return
        known = self.undeclared
        raise fail(
            f"no queue or dead-letter queue {self.queue!r} in the registry, and no dead letters"
            f" under that name; known: {', '.join(known) or '(none)'}"
            + did_you_mean(self.queue, known)
        )


def _chosen(records: list[DeadLetterRecord], ids: list[str], dlq: str) -> list[str]:
    """The record ids `--id` names: a record id as it is, a job id (the part after `queue/`
    in `dlq list`) as its records' ids, with a note; an id that is neither is refused, and
    nothing is replayed."""
    by_record = {record.id for record in records}
    chosen: list[str] = []
    for given in ids:
        if given in by_record:
            chosen.append(given)
            continue
        matches = [record.id for record in records if record.job_id == given]
        if not matches:
            raise fail(
                f"no dead-letter record {given!r} in {dlq}: --id takes a record id (the first"
                f" column of `pikkugen dlq list`) or a job id (after `queue/` in that column)"
            )
        typer.echo(
            f"note: {given!r} is a job id; replaying its record(s) {', '.join(matches)}", err=True
        )
        chosen.extend(matches)
    return list(dict.fromkeys(chosen))


def _one_line(text: str) -> str:
    """A multi-line message (pydantic's validation errors) on one line: `; ` between lines."""
    return "; ".join(part.strip() for part in text.splitlines() if part.strip())


@dlq_app.command("list")
def dlq_list(
    queue: Annotated[
        str,
        typer.Argument(
            help="A queue with a dead_letter_queue, or a DLQ name.",
            autocompletion=complete_dead_letter_queue,
        ),
    ],
    limit: Annotated[int, typer.Option("--limit", min=1)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    backend: BackendOption = None,
) -> None:
    """List dead-lettered jobs: id, queue, job id, attempts, reason, error."""
    config = project_config()
    registry, generated_url = load_registry(config)
    named = _Target(registry, queue)
    dlq, source = named.dlq, named.source
    url = backend_url(backend, config, generated_url)

    async def read(target: Backend) -> list[DeadLetterRecord]:
        await named.check(target)
        return await target.dead_letters(dlq, limit)

    records = [r for r in on_backend(url, read) if source is None or r.queue == source]
    for record in records:
        if as_json:
            typer.echo(json.dumps({"id": record.id, **record.as_payload()}, sort_keys=True))
        else:
            typer.echo(
                f"{record.id}  {record.queue}/{record.job_id}  attempts={record.attempts}"
                f"  reason={record.reason}  {record.error.type}: {_one_line(record.error.message)}"
                f"  payload={json.dumps(record.payload, sort_keys=True)}"
            )
    typer.echo(f"{len(records)} record(s) in {dlq} ({masked_url(url)})", err=True)


@dlq_app.command("replay")
def dlq_replay(
    queue: Annotated[
        str,
        typer.Argument(
            help="A queue with a dead_letter_queue, or a DLQ name.",
            autocompletion=complete_dead_letter_queue,
        ),
    ],
    ids: Annotated[
        list[str] | None,
        typer.Option(
            "--id",
            help="A record id to replay, the first column of `dlq list` (a job id is accepted"
            " too); repeatable; default: all.",
        ),
    ] = None,
    backend: BackendOption = None,
) -> None:
    """Move dead-lettered jobs back to their queue, attempts reset."""
    config = project_config()
    registry, generated_url = load_registry(config)
    named = _Target(registry, queue)
    dlq, source = named.dlq, named.source
    url = backend_url(backend, config, generated_url)

    async def replay(target: Backend) -> int:
        await named.check(target)
        chosen: list[str] | None = None
        if ids or source is not None:
            records = await target.dead_letters(dlq, 1_000_000)
            if source is not None:
                records = [r for r in records if r.queue == source]
            chosen = _chosen(records, list(ids), dlq) if ids else [r.id for r in records]
        return await target.replay(dlq, chosen)

    count = on_backend(url, replay)
    typer.echo(f"replayed {count} job(s) from {dlq} ({masked_url(url)})")
