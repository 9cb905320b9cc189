"""`python -m pikku_queue worker …`: parse the command line, import the registry, prepare the
run, then serve it here or in `--processes N` children. Refusals before the worker starts are
rendered here: one `error:` line, `EXIT_START_ERROR`."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from pikku_queue.runner.arguments import parser, split_queues
from pikku_queue.runner.children import run_processes
from pikku_queue.runner.errors import EXIT_START_ERROR, StartError
from pikku_queue.runner.registry_import import import_registry
from pikku_queue.runner.serving import run_worker
from pikku_queue.runner.worker_run import prepare


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
    logging.basicConfig(
        level=str(args.log_level).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        loaded, generated_url = import_registry(args.registry)
        run = prepare(
            loaded,
            generated_url,
            backend=args.backend,
            queues=split_queues(args.queues),
            concurrency=args.concurrency,
            burst=args.burst,
            grace_s=args.grace,
            lease_ms=args.lease_ms,
            schemes=schemes,
            strict=args.strict,
            metrics_port=args.metrics_port,
            metrics_host=args.metrics_host,
        )
    except StartError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_START_ERROR
    run.events_hook = args.events_hook
    if args.processes > 1:
        return run_processes(
            run, args.processes, args.registry, strict=args.strict, log_level=args.log_level
        )
    return run_worker(run)
