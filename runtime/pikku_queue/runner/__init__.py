"""The one worker runner: `python -m pikku_queue worker --registry PKG`, `pikkugen worker` (the
same runner plus a rich live display) and the generated `redis_worker.py` all start here.

What it does, once for every backend:

* imports the generated registry (`PKG.registry`, or `PKG` itself when it holds `REGISTRY`);
  an error in the user's code (a processor module raising at import, a failing services
  factory) is a `StartError`, printed as one `error:` line, exit code 2, before any job is
  touched;
* resolves the backend URL through `pikku_queue.adapters.resolve_url` (`--backend` →
  `set_default_backend` → `$PIKKU_QUEUE_URL` → the registry's `BACKEND_URL` → the SQLite file);
* installs the one signal rule (`install_signals`): the first SIGTERM/SIGINT stops taking jobs
  and gives active ones the grace period; the second skips the grace period, gives the
  running jobs back (the pull workers release their leases) and the process exits 130;
* runs `backend.run_worker` and prints one line when it starts and one when it is done (a
  `--burst` worker that left jobs it could not bring to a verdict prints one `undone:` line
  each and exits 3, `EXIT_UNDONE`);
* with `--processes N` (N > 1), `run_processes` starts N child runners
  (`sys.executable -m pikku_queue worker`, each with its own backend connection), forwards
  the signal rule to them, prefixes their lines with `[i]` and exits with the worst child
  exit status.

One module per job: `flags` (the worker's options, declared once as `WorkerFlags`: the
argparse parser, `pikkugen worker`'s typer options and a child's command line are built from
it), `arguments` (argparse), `registry_import`, `worker_run` (`prepare`: a command line's
values to a `WorkerRun`), `serving` (one worker in this process, the signal rule), `children`
(`--processes N`), `errors` (`StartError`, exit statuses) and `command` (`main`, which puts
them together). This package re-exports their public names.
"""

from pikku_queue.adapters import resolve_url as resolve_url
from pikku_queue.runner.arguments import parser, worker_flags
from pikku_queue.runner.children import run_processes
from pikku_queue.runner.command import main
from pikku_queue.runner.errors import (
    EXIT_SECOND_SIGNAL,
    EXIT_START_ERROR,
    EXIT_UNDONE,
    StartError,
    described,
)
from pikku_queue.runner.flags import (
    BACKEND_HELP,
    DEFAULT_GRACE_S,
    DEFAULT_LEASE_MS,
    DEFAULT_METRICS_HOST,
    FLAGS,
    REGISTRY,
    Flag,
    WorkerFlags,
    about,
    flags_of,
    split_queues,
)
from pikku_queue.runner.registry_import import import_registry
from pikku_queue.runner.serving import (
    Watch,
    install_signals,
    load_processors,
    open_backend,
    run_worker,
    serve,
    start_metrics,
)
from pikku_queue.runner.worker_run import WorkerRun, check_fresh, prepare, select_queues

__all__ = [
    "BACKEND_HELP",
    "DEFAULT_GRACE_S",
    "DEFAULT_LEASE_MS",
    "DEFAULT_METRICS_HOST",
    "EXIT_SECOND_SIGNAL",
    "EXIT_START_ERROR",
    "EXIT_UNDONE",
    "FLAGS",
    "REGISTRY",
    "Flag",
    "StartError",
    "Watch",
    "WorkerFlags",
    "WorkerRun",
    "about",
    "check_fresh",
    "described",
    "flags_of",
    "import_registry",
    "install_signals",
    "load_processors",
    "main",
    "open_backend",
    "parser",
    "prepare",
    "resolve_url",
    "run_processes",
    "run_worker",
    "select_queues",
    "serve",
    "split_queues",
    "start_metrics",
    "worker_flags",
]
