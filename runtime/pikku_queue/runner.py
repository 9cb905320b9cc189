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
* runs `backend.run_worker` and prints one line when it starts and one when it is done;
* with `--processes N` (N > 1), `run_processes` starts N child runners
  (`sys.executable -m pikku_queue worker`, each with its own backend connection), forwards
  the signal rule to them, prefixes their lines with `[i]` and exits with the worst child
  exit status.

Start-up behaviour (a warning, a metrics server…) is added as a function in a runtime module
and one call in `_on_start`. The argument parser is the stdlib's: the runtime never imports
typer or rich.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import os
import signal
import subprocess
import sys
import sysconfig
import threading
import traceback
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from types import ModuleType
from typing import IO, TYPE_CHECKING, Any

from pikku_queue import loopwatch
from pikku_queue.adapters import DEFAULT_URL, URL_ENVIRONMENT_VARIABLE, connect, masked_url
from pikku_queue.adapters import resolve_url as resolve_url
from pikku_queue.backend import Backend, WorkerOptions, WorkerReport
from pikku_queue.errors import PikkuQueueError
from pikku_queue.events import subscribe_hook
from pikku_queue.processor import Processor
from pikku_queue.project import stale_message
from pikku_queue.redact import redact_text
from pikku_queue.registry import Registry

if TYPE_CHECKING:
    from pikku_queue.metrics import MetricsServer

logger = logging.getLogger("pikku_queue")

DEFAULT_GRACE_S = 30.0
DEFAULT_LEASE_MS = 30_000
DEFAULT_METRICS_HOST = "127.0.0.1"
#: Exit status after a second signal (128 + SIGINT, as a shell reports Ctrl-C).
EXIT_SECOND_SIGNAL = 130
#: Exit status when the worker cannot start (the user's code, the backend, the arguments).
EXIT_START_ERROR = 2

BACKEND_HELP = (
    f"Backend URL (default: set_default_backend, ${URL_ENVIRONMENT_VARIABLE}, the registry's "
    f"BACKEND_URL, then {DEFAULT_URL})."
)


class StartError(PikkuQueueError):
    """The worker cannot start: printed as one `error:` line, exit code 2, no traceback."""


def described(exc: BaseException) -> str:
    """`Type: message` plus where it was raised in the user's code, for one error line."""
    if isinstance(exc, PikkuQueueError):
        return f"{type(exc).__name__}: {exc}"
    stdlib = sysconfig.get_paths()["stdlib"]
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if not f.filename.startswith(("<", stdlib))
    ]
    at = f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{at}"


def _import(name: str) -> ModuleType | None:
    """The module `name`, None when it (or a package above it) does not exist."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
            return None
        raise StartError(
            f"importing the generated registry {name!r} failed: {described(exc)}"
        ) from None
    except Exception as exc:  # it may import the user's modules: they may raise anything
        raise StartError(
            f"importing the generated registry {name!r} failed: {described(exc)}"
        ) from None


def import_registry(package: str) -> tuple[Registry, str | None]:
    """The generated `REGISTRY` and `BACKEND_URL` of `package` (the generated package, or its
    `registry` module). The folder holding it must be importable (cwd, `PYTHONPATH`)."""
    names = [package] if package.endswith(".registry") else [f"{package}.registry", package]
    found: ModuleType | None = None
    for name in names:
        module = _import(name)
        if module is None:
            continue
        found = found or module
        registry = getattr(module, "REGISTRY", None)
        if isinstance(registry, Registry):
            backend_url = getattr(module, "BACKEND_URL", None)
            return registry, backend_url if isinstance(backend_url, str) else None
    if found is not None:
        raise StartError(f"{found.__name__} has no REGISTRY; run `pikkugen scan` again")
    raise StartError(
        f"cannot import the generated registry {names[0]!r}; run `pikkugen scan`, and start "
        "the worker where that package can be imported (the current folder, or PYTHONPATH)"
    )


def select_queues(registry: Registry, queues: Sequence[str] | None) -> list[str]:
    """`queues` (default: every registered queue), each checked against the registry."""
    names = list(queues) if queues else registry.names()
    try:
        for name in names:
            registry.get(name)
    except PikkuQueueError as exc:
        raise StartError(str(exc)) from None
    if not names:
        raise StartError("the registry has no queues; declare a processor and run `pikkugen scan`")
    return names


def load_processors(registry: Registry, names: Sequence[str]) -> list[Processor]:
    """Import the processors of `names`; any error in the user's modules (an exception at
    import, an annotation that does not resolve) is a `StartError`."""
    try:
        return registry.load(list(names))
    except Exception as exc:
        raise StartError(f"cannot load the processors: {described(exc)}") from None


def open_backend(url: str) -> Backend:
    """`connect(url)`, its refusal (unknown scheme, missing extra) as a `StartError`."""
    try:
        return connect(url)
    except PikkuQueueError as exc:
        raise StartError(str(exc)) from None


def install_signals(stop: asyncio.Event, main: asyncio.Task[Any]) -> None:
    """THE signal rule. First SIGTERM/SIGINT: set `stop` (take no new jobs; active ones get
    the grace period). Second: cancel `main`, which skips the grace period; the generic pull
    worker (SQLite, memory) and the SQS long-poll worker still give their jobs back (shielded,
    bounded in time), so those jobs go back to waiting now instead of coming back as stalls
    when their leases expire. The runner then exits `EXIT_SECOND_SIGNAL`."""
    loop = asyncio.get_running_loop()

    def handle(sig: signal.Signals) -> None:
        if stop.is_set():
            logger.warning("%s: stopping now; active jobs are given back", sig.name)
            main.cancel()
            return
        logger.warning("%s: finishing active jobs, then stopping (again to stop now)", sig.name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, handle, sig)


#: A live display around the run (`pikkugen worker`'s bars): entered once the backend is open
#: and the options are built, left when the worker is done, before the backend closes.
Watch = Callable[[Backend, WorkerOptions, list[str]], AbstractAsyncContextManager[None]]


@contextlib.asynccontextmanager
async def _no_watch(
    backend: Backend, options: WorkerOptions, queues: list[str]
) -> AsyncIterator[None]:
    yield


@dataclass
class WorkerRun:
    """One worker run: what to serve, where, and how."""

    registry: Registry
    url: str
    queues: list[str]
    concurrency: int | None = None
    burst: bool = False
    grace_s: float = DEFAULT_GRACE_S
    lease_ms: int = DEFAULT_LEASE_MS
    #: Serve Prometheus `/metrics` on this port (`pikku_queue.metrics`); None: no server.
    metrics_port: int | None = None
    metrics_host: str = DEFAULT_METRICS_HOST
    #: Extra options the caller wants on `WorkerOptions` (e.g. a worker id).
    extra: dict[str, Any] = field(default_factory=dict)
    #: `pkg.module:function` called with every worker event (`[tool.pikkugen] events`).
    events_hook: str | None = None


def start_metrics(
    port: int | None, host: str, backend: Backend, queues: Sequence[str]
) -> MetricsServer | None:
    """`--metrics-port`/`--metrics-host`: serve `/metrics` (None: no port given). Call it on
    the worker's event loop; `.close()` the result when the worker stops. `pikku_queue.metrics`
    needs prometheus-client, an optional dependency: imported only when a port is given."""
    if port is None:
        return None
    try:
        from pikku_queue.metrics import serve
    except ImportError as exc:
        raise PikkuQueueError(
            f"--metrics-port needs the prometheus-client package ({exc}):"
            " pip install 'pikkugen[metrics]'"
        ) from None
    try:
        server = serve(port, host, backend=backend, queues=queues)
    except OSError as exc:
        raise PikkuQueueError(f"cannot serve /metrics on {host}:{port}: {exc}") from None
    logger.info("metrics on %s", server.url)
    return server


def _on_start(run: WorkerRun, backend: Backend, options: WorkerOptions) -> None:
    """Start-up hooks: one call each, in a runtime module (warnings, servers…)."""
    loopwatch.start(options.stop)  # names an async processor that blocks the loop
    if run.events_hook is not None:
        subscribe_hook(options.events, run.events_hook)


async def serve(run: WorkerRun, watch: Watch | None = None) -> WorkerReport:
    """Load the processors, create the services, open the backend and run the worker until
    it is stopped (or drained, with `burst`), under the one signal rule."""
    processors = load_processors(run.registry, run.queues)
    try:
        services = await run.registry.acreate_services()
    except Exception as exc:  # the user's factory: a database that is down, a bad reference
        raise StartError(f"the services factory failed: {described(exc)}") from None
    backend = open_backend(run.url)
    try:
        options = WorkerOptions(
            processors=processors,
            concurrency=run.concurrency,
            burst=run.burst,
            services=services,
            grace_period_s=run.grace_s,
            lease_ms=run.lease_ms,
            **run.extra,
        )
        current = asyncio.current_task()
        assert current is not None
        install_signals(options.stop, current)
        _on_start(run, backend, options)
        metrics = start_metrics(run.metrics_port, run.metrics_host, backend, run.queues)
        try:
            async with (watch or _no_watch)(backend, options, run.queues):
                return await backend.run_worker(options)
        finally:
            if metrics is not None:
                metrics.close()
    finally:
        await backend.close()


def run_worker(run: WorkerRun, watch: Watch | None = None) -> int:
    """`serve` from sync code, with the start and done lines; returns the exit status: 0,
    `EXIT_START_ERROR` (an `error:` line on stderr) or `EXIT_SECOND_SIGNAL`."""
    print(
        f"worker on {masked_url(run.url)}: {', '.join(run.queues)}{' (burst)' if run.burst else ''}",
        flush=True,
    )
    try:
        report = asyncio.run(serve(run, watch))
    except PikkuQueueError as exc:  # StartError, or the backend refusing to start
        print(f"error: {redact_text(str(exc), run.url)}", file=sys.stderr, flush=True)
        return EXIT_START_ERROR
    except asyncio.CancelledError:  # a second SIGTERM/SIGINT: not a crash, no traceback
        print("worker stopped at once (second signal): active jobs were given back", flush=True)
        return EXIT_SECOND_SIGNAL
    print(
        f"worker done: completed={report.completed} retried={report.retried}"
        f" dead_lettered={report.dead_lettered} failed={report.failed} stalled={report.stalled}",
        flush=True,
    )
    return 0


def _child_arguments(
    run: WorkerRun, package: str, index: int, *, strict: bool, log_level: str
) -> list[str]:
    """The runner command line of child `index`: `run`'s options, the metrics port + index."""
    args = ["-m", "pikku_queue", "worker", "--registry", package, "--queues", ",".join(run.queues)]
    if run.concurrency is not None:
        args += ["--concurrency", str(run.concurrency)]
    if run.burst:
        args.append("--burst")
    if strict:
        args.append("--strict")
    args += ["--grace", repr(run.grace_s), "--lease-ms", str(run.lease_ms)]
    if run.metrics_port is not None:  # one /metrics server per process: PORT, PORT+1, …
        port = run.metrics_port + index if run.metrics_port else 0
        args += ["--metrics-port", str(port), "--metrics-host", run.metrics_host]
    if run.events_hook is not None:
        args += ["--events-hook", run.events_hook]
    return [*args, "--log-level", log_level]


def _prefix(stream: IO[str], out: IO[str], label: str, lock: threading.Lock) -> None:
    for line in stream:
        with lock:
            out.write(f"{label} {line}")
            out.flush()
    stream.close()


def _exit_status(returncode: int) -> int:
    """A child's exit status; killed by a signal: 128 + its number, as a shell reports it."""
    return 128 - returncode if returncode < 0 else returncode


def run_processes(
    run: WorkerRun,
    processes: int,
    package: str,
    *,
    strict: bool = False,
    log_level: str = "INFO",
    path: Sequence[str] = (),
) -> int:
    """`processes` child runners of `run` (each opens its own backend connection; the pull
    backends' leases make concurrent workers safe). Each child's stdout/stderr lines come out
    on ours prefixed `[i]`. The one signal rule, forwarded: a first SIGTERM/SIGINT here sends
    SIGTERM to every child (stop taking jobs, grace period), a second one sends it again
    (give the jobs back, exit 130). The children are in their own process group, so a
    terminal's Ctrl-C reaches them once, through here. Returns the worst child exit status
    (0 when all are 0); with `burst`, once every child has drained. `path`: folders the
    children need on `PYTHONPATH` to import the registry (the current folder is inherited).
    """
    env = dict(os.environ)
    # The URL resolved here, by the one order, handed on as $PIKKU_QUEUE_URL (not on a
    # command line, where `ps` would show its password); a child's own order only puts a
    # `set_default_backend` made while importing the registry before it.
    env[URL_ENVIRONMENT_VARIABLE] = run.url
    env["PYTHONUNBUFFERED"] = "1"
    pythonpath = [*path, *filter(None, [env.get("PYTHONPATH")])]
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(pythonpath)
    print(
        f"{processes} worker processes on {masked_url(run.url)}: {', '.join(run.queues)}"
        f"{' (burst)' if run.burst else ''}",
        flush=True,
    )
    signals: list[int] = []
    children: list[subprocess.Popen[str]] = []
    sent: list[int] = []  # signals forwarded to each child: each gets every one, once

    def deliver() -> None:
        for index, child in enumerate(children):
            while sent[index] < len(signals):
                sent[index] += 1
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)

    def forward(signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        signals.append(signum)
        if len(signals) == 1:
            logger.warning("%s: the worker processes finish their active jobs, then stop", name)
        else:
            logger.warning("%s: the worker processes stop now; active jobs are given back", name)
        deliver()

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    lock = threading.Lock()
    pumps: list[threading.Thread] = []
    try:
        for index in range(processes):
            child = subprocess.Popen(
                [
                    sys.executable,
                    *_child_arguments(run, package, index, strict=strict, log_level=log_level),
                ],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                errors="replace",
                process_group=0,
            )
            sent.append(0)
            children.append(child)
            for stream, out in ((child.stdout, sys.stdout), (child.stderr, sys.stderr)):
                assert stream is not None
                pump = threading.Thread(
                    target=_prefix, args=(stream, out, f"[{index}]", lock), daemon=True
                )
                pump.start()
                pumps.append(pump)
            deliver()  # a signal that came while this child was starting
        codes = [_exit_status(child.wait()) for child in children]
    finally:
        for child in children:  # an error here (not a signal): no child outlives us
            if child.poll() is None:
                child.kill()
                child.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    for pump in pumps:
        pump.join()
    worst = max(codes)
    print(f"worker processes done: exit statuses {' '.join(map(str, codes))}", flush=True)
    return worst


def prepare(
    registry: Registry,
    generated_url: str | None,
    *,
    backend: str | None = None,
    queues: Sequence[str] | None = None,
    concurrency: int | None = None,
    burst: bool = False,
    grace_s: float = DEFAULT_GRACE_S,
    lease_ms: int = DEFAULT_LEASE_MS,
    schemes: Sequence[str] | None = None,
    metrics_port: int | None = None,
    metrics_host: str = DEFAULT_METRICS_HOST,
    strict: bool = False,
) -> WorkerRun:
    """A `WorkerRun` from a command line's values: the queues checked, the URL resolved (and,
    with `schemes`, refused unless it has one of them)."""
    names = select_queues(registry, queues)
    check_fresh(registry, strict)
    # A relative SQLite path is the project's file, whatever the current folder.
    url = registry.url(resolve_url(backend, generated_url))
    if schemes is not None and url.partition("://")[0] not in schemes:
        wanted = " or ".join(f"{s}://" for s in schemes)
        raise StartError(
            f"this worker needs a {wanted} URL, got {masked_url(url)!r}: pass --backend or "
            f"set {URL_ENVIRONMENT_VARIABLE}"
        )
    return WorkerRun(
        registry=registry,
        url=url,
        queues=names,
        concurrency=concurrency,
        burst=burst,
        grace_s=grace_s,
        lease_ms=lease_ms,
        metrics_port=metrics_port,
        metrics_host=metrics_host,
    )


def check_fresh(registry: Registry, strict: bool) -> None:
    """A registry older than the files it was generated from (an edited `attempts=`, a new
    processor) would run the old options: a warning at start, a `StartError` under strict."""
    stale = registry.stale_sources()
    if stale and strict:
        raise StartError(f"{stale_message(stale)} (--strict)")
    if stale:
        print(f"warning: {stale_message(stale)}", file=sys.stderr, flush=True)


def split_queues(text: str | None) -> list[str] | None:
    """`--queues a,b` as a list (None: every queue)."""
    if not text:
        return None
    return [q.strip() for q in text.split(",") if q.strip()] or None


def _positive(kind: type[int] | type[float], minimum: float) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = kind(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}")
        return value

    parse.__name__ = kind.__name__
    return parse


def parser(prog: str | None = None, *, registry: str | None = None) -> argparse.ArgumentParser:
    """`worker` and its options; with `registry` given (a generated `redis_worker.py`), the
    worker's options alone, `--registry` fixed to it."""
    if registry is not None:
        worker = argparse.ArgumentParser(
            prog=prog, description="Run the generated registry's workers."
        )
        _worker_arguments(worker, registry)
        return worker
    top = argparse.ArgumentParser(prog=prog or "python -m pikku_queue")
    commands = top.add_subparsers(dest="command", required=True)
    worker = commands.add_parser(
        "worker", help="Run the processors of a generated registry until stopped."
    )
    worker.add_argument(
        "--registry",
        required=True,
        metavar="PKG",
        help="The generated package (e.g. shop.generated); it must be importable.",
    )
    _worker_arguments(worker, None)
    return top


def _worker_arguments(worker: argparse.ArgumentParser, registry: str | None) -> None:
    if registry is not None:
        worker.set_defaults(registry=registry)
    worker.add_argument("--backend", metavar="URL", help=BACKEND_HELP)
    worker.add_argument("--queues", metavar="A,B", help="Comma-separated queues (default: all).")
    worker.add_argument(
        "--concurrency",
        type=_positive(int, 1),
        metavar="N",
        help="Jobs at once per queue (default: each processor's).",
    )
    worker.add_argument("--burst", action="store_true", help="Exit when the queues are drained.")
    worker.add_argument(
        "--strict",
        action="store_true",
        help="Refuse to start on a registry older than its sources (else a warning).",
    )
    worker.add_argument(
        "--grace",
        type=_positive(float, 0),
        default=DEFAULT_GRACE_S,
        metavar="S",
        help=f"Seconds active jobs get to finish on stop (default {DEFAULT_GRACE_S:g}).",
    )
    worker.add_argument(
        "--lease-ms",
        type=_positive(int, 100),
        default=DEFAULT_LEASE_MS,
        metavar="MS",
        help=f"Job lease; a dead worker's jobs return after it (default {DEFAULT_LEASE_MS}).",
    )
    worker.add_argument(
        "--metrics-port",
        type=_positive(int, 0),
        metavar="PORT",
        help="Serve Prometheus /metrics on this port (needs the [metrics] extra).",
    )
    worker.add_argument(
        "--metrics-host",
        default=DEFAULT_METRICS_HOST,
        metavar="HOST",
        help=f"Address of the /metrics server (default {DEFAULT_METRICS_HOST}).",
    )
    worker.add_argument(
        "--processes",
        type=_positive(int, 1),
        default=1,
        metavar="N",
        help="Run N worker processes, each with its own backend connection (default 1: this "
        "process); --metrics-port PORT serves process i on PORT+i.",
    )
    worker.add_argument("--log-level", default="INFO", help="Logging level (default INFO).")
    # `pkg.module:function` called with every worker event: how `pikkugen worker --processes`
    # hands its children `[tool.pikkugen] events`.
    worker.add_argument("--events-hook", metavar="PKG.MOD:FUNC", help=argparse.SUPPRESS)


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
