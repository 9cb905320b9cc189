"""`--processes N`: N child runners (`sys.executable -m pikku_queue worker`), each serving in
its own process with its own backend connection, for CPU-bound work or more than one core.

The parent serves nothing itself: it starts the children, forwards the one signal rule to
them, prefixes their lines `[i]` and exits with the worst child exit status.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import IO

from pikku_queue.adapters import URL_ENVIRONMENT_VARIABLE, masked_url
from pikku_queue.runner.worker_run import WorkerRun

logger = logging.getLogger("pikku_queue")


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
