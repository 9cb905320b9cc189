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
from dataclasses import replace
from typing import IO

from pikku_queue.adapters import masked_url
from pikku_queue.runner.flags import FLAGS, REGISTRY, WorkerFlags
from pikku_queue.runner.worker_run import WorkerRun

logger = logging.getLogger("pikku_queue")


def child_flags(run: WorkerRun, index: int) -> WorkerFlags:
    """What child `index` is told: the parent's options with what the parent resolved (the
    URL, the queues), one process each, and its own `/metrics` port (PORT+index; port 0, a
    free port, stays 0)."""
    port = run.flags.metrics_port
    return replace(
        run.flags,
        backend=run.url,
        queues=",".join(run.queues),
        processes=1,
        metrics_port=port + index if port else port,
    )


def child_command(flags: WorkerFlags, package: str) -> tuple[list[str], dict[str, str]]:
    """The runner command line serving `package` with `flags` (what follows `python`), and
    the environment variables that carry the flags declared with one (the backend URL: not on
    a command line, where `ps` would show its password). The child's parser reads it back to
    `flags` (`tests/runtime/test_runner_flags.py` round-trips every flag)."""
    args = ["-m", "pikku_queue", "worker", *REGISTRY.words(package)]
    env: dict[str, str] = {}
    for flag in FLAGS:
        value = getattr(flags, flag.dest)
        if flag.env is None:
            args += flag.words(value)
        elif value is not None:
            env[flag.env] = str(value)
    return args, env


def _prefix(stream: IO[str], out: IO[str], label: str, lock: threading.Lock) -> None:
    for line in stream:
        with lock:
            out.write(f"{label} {line}")
            out.flush()
    stream.close()


def _exit_status(returncode: int) -> int:
    """A child's exit status; killed by a signal: 128 + its number, as a shell reports it."""
    return 128 - returncode if returncode < 0 else returncode


def run_processes(run: WorkerRun, package: str, *, path: Sequence[str] = ()) -> int:
    """`run.flags.processes` child runners of `run`, serving `package` (each opens its own
    backend connection; the pull backends' leases make concurrent workers safe). Each child's stdout/stderr lines come out
    on ours prefixed `[i]`. The one signal rule, forwarded: a first SIGTERM/SIGINT here sends
    SIGTERM to every child (stop taking jobs, grace period), a second one sends it again
    (give the jobs back, exit 130). The children are in their own process group, so a
    terminal's Ctrl-C reaches them once, through here. Returns the worst child exit status
    (0 when all are 0); with `burst`, once every child has drained. `path`: folders the
    children need on `PYTHONPATH` to import the registry (the current folder is inherited).
    """
    processes = run.flags.processes
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    pythonpath = [*path, *filter(None, [env.get("PYTHONPATH")])]
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(pythonpath)
    print(
        f"{processes} worker processes on {masked_url(run.url)}: {', '.join(run.queues)}"
        f"{' (burst)' if run.flags.burst else ''}",
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
            # The URL resolved here, by the one order, reaches the child as $PIKKU_QUEUE_URL;
            # the child's own order only puts a `set_default_backend` made while importing
            # the registry before it.
            args, handed = child_command(child_flags(run, index), package)
            child = subprocess.Popen(
                [sys.executable, *args],
                env={**env, **handed},
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
