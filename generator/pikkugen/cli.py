"""The `pikkugen` command: a thin typer shell over the library.

Generate-time commands (scan, list, watch, client) live in `commands/generate.py`, run-time
commands (worker, enqueue, dlq) in `commands/runtime.py`; this module only assembles them.
"""

from __future__ import annotations

import typer

from pikkugen.commands import generate, runtime

app = typer.Typer(
    name="pikkugen",
    help="Typed background job queues: generate clients and wiring, run workers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
generate.register(app)
runtime.register(app)


def main() -> None:
    app()
