"""`python -m pikku_queue worker …`: parse the command line, import the registry, prepare the
run, then serve it here or in `--processes N` children. Refusals before the worker starts are
rendered here: one `error:` line, `EXIT_START_ERROR`."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from pikku_queue.runner.arguments import parser, worker_flags
from pikku_queue.runner.children import run_processes
from pikku_queue.runner.errors import EXIT_START_ERROR, StartError
from pikku_queue.runner.registry_import import import_registry
from pikku_queue.runner.serving import run_worker
from pikku_queue.runner.worker_run import check_log_level, prepare


def main(
    argv: Sequence[str] | None = None,
    *,
    prog: str | None = None,
    registry: str | None = None,
    schemes: Sequence[str] | None = None,
) -> int:
    """`python -m pikku_queue worker …`; the generated `redis_worker.py` passes its own
    package as `registry` and `schemes=("redis", "rediss")`."""
    args = parser(prog, registry=registry).parse_args(argv)
    flags = worker_flags(args)
    try:
        check_log_level(flags.log_level)
    except StartError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_START_ERROR
    logging.basicConfig(
        level=flags.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        loaded, generated_url = import_registry(args.registry)
        run = prepare(loaded, generated_url, flags, schemes=schemes)
    except StartError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_START_ERROR
    if flags.processes > 1:
        return run_processes(run, args.registry)
    return run_worker(run)
