"""Summarise many files: cache first, then parse the misses, in parallel when it pays.

Parallel parsing forks worker processes (cheap: libcst is already imported) that write their
summaries as JSON lines to a temporary file each; the parent reads them back and alone writes
the cache. No pickle is involved, not even for inter-process traffic. Forking is skipped when
the process runs other threads (fork would copy their locks mid-use) or the platform has no
fork; the misses are then parsed in-process (a file beyond `guard.SAFE_DEPTH` still gets a
child of its own, `summarize_isolated`).

A child that dies (a signal: libcst overflowing the C stack) or stops making progress for
`CHILD_TIMEOUT` seconds costs a PK006 diagnostic for the file it was parsing; the files it
had not reached go to a new child. Children die with the scanner: they ask the kernel for
SIGKILL when their parent goes (Linux), check the parent between files, and the parent kills
and reaps them on any exit, Ctrl-C included.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import json
import os
import signal
import tempfile
import threading
import time
from collections.abc import Sequence
from typing import cast

from pikkugen.scanner.cache import SummaryCache, content_key
from pikkugen.scanner.summary import ModuleSummary, empty_summary

#: Fewer misses than this are parsed in-process: a fork costs about as much as two parses.
PARALLEL_THRESHOLD = 12


#: A child that writes no summary for this long is killed; its file becomes a PK006.
CHILD_TIMEOUT = 120.0
_POLL = 0.005


def _summarize(data: bytes, *, isolate: bool = True) -> ModuleSummary:
    from pikkugen.scanner.parse import summarize

    # a JSON round trip, so a fresh summary has exactly the shape of a cached one
    return cast(ModuleSummary, json.loads(json.dumps(summarize(data, isolate=isolate))))


def can_fork() -> bool:
    return hasattr(os, "fork") and threading.active_count() == 1


def summarize_all(
    blobs: Sequence[bytes], *, cache: SummaryCache | None, jobs: int | None
) -> tuple[list[ModuleSummary], int, int]:
    """Summaries in the order of `blobs`, how many were parsed (cache misses), and how many
    worker processes parsed them (0: in-process)."""
    results: list[ModuleSummary | None] = [None] * len(blobs)
    keys = [content_key(b) for b in blobs] if cache is not None else []
    misses: list[int] = []
    for index in range(len(blobs)):
        hit = cache.get(keys[index]) if cache is not None else None
        if hit is None:
            misses.append(index)
        else:
            results[index] = hit
    workers = min(jobs or os.cpu_count() or 1, len(misses))
    processes = 0
    if workers > 1 and len(misses) >= PARALLEL_THRESHOLD and can_fork():
        parsed = _in_children([blobs[i] for i in misses], workers)
        processes = workers
    else:
        parsed = {}
    for position, index in enumerate(misses):
        summary = parsed.get(position)
        if summary is None:  # in-process
            summary = _summarize(blobs[index])
        results[index] = summary
        problem = summary["problem"]
        # a scanner bug is not remembered past a fix, nor a crash or a timeout (it may
        # depend on this machine's stack or load; the budget check is cheap to redo)
        if cache is not None and (problem is None or problem["code"] not in ("PK006", "PK900")):
            cache.put(keys[index], summary)
    return [r for r in results if r is not None], len(misses), processes


def summarize_isolated(data: bytes) -> ModuleSummary | None:
    """One file parsed in a child process; None when no child can be forked here."""
    if not can_fork():
        return None
    return _in_children([data], 1)[0]


def _in_children(blobs: list[bytes], workers: int) -> dict[int, ModuleSummary]:
    """Summaries of every blob, parsed by `workers` forked children (child k takes blobs k,
    k+workers, ...). A child that dies or hangs costs its current file a PK006 summary; the
    rest of its share is handed to a new child."""
    importlib.import_module("pikkugen.scanner.parse")  # once here, not once per child
    found: dict[int, ModuleSummary] = {}
    pending = list(range(len(blobs)))
    with tempfile.TemporaryDirectory(prefix="pikkugen-scan-") as folder:
        round_ = 0
        while pending:
            shares = [pending[k::workers] for k in range(workers) if pending[k::workers]]
            outcomes = _run_round(blobs, shares, os.path.join(folder, str(round_)))
            round_ += 1
            pending = []
            for share, (done, failure) in zip(shares, outcomes, strict=True):
                found.update(done)
                rest = [i for i in share if i not in done]
                if rest:  # each round removes a culprit, so this ends
                    culprit, rest = rest[0], rest[1:]
                    why = failure or "the parser process stopped early"
                    found[culprit] = _crashed(blobs[culprit], why)
                pending.extend(rest)
    return found


def _crashed(data: bytes, why: str) -> ModuleSummary:
    from pikkugen.scanner.parse import crash_problem

    return empty_summary(crash_problem(data, why))


def _run_round(
    blobs: list[bytes], shares: list[list[int]], prefix: str
) -> list[tuple[dict[int, ModuleSummary], str | None]]:
    """Fork one child per share and wait for all; per share, what it wrote and why it
    stopped early (None: it finished)."""
    parent = os.getpid()
    children: list[tuple[int, str]] = []
    try:
        for number, share in enumerate(shares):
            out = f"{prefix}-{number}.jsonl"
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the child, which never returns
                _child(blobs, share, out, parent)
            children.append((pid, out))
        failures = _wait(children)
    finally:
        _kill_all([pid for pid, _ in children])
    outcomes: list[tuple[dict[int, ModuleSummary], str | None]] = []
    for (_, out), failure in zip(children, failures, strict=True):
        done: dict[int, ModuleSummary] = {}
        try:
            with open(out, encoding="utf-8") as handle:
                for line in handle:
                    if not line.endswith("\n"):
                        break  # cut short by the child's death
                    index, summary = json.loads(line)
                    done[int(index)] = cast(ModuleSummary, summary)
        except (OSError, ValueError):
            pass
        outcomes.append((done, failure))
    return outcomes


def _child(blobs: list[bytes], share: list[int], out: str, parent: int) -> None:  # pragma: no cover
    code = 0
    try:
        _die_with_parent(parent)
        with open(out, "w", encoding="utf-8") as handle:
            for index in share:
                if os.getppid() != parent:
                    break  # the scanner is gone: nobody will read this
                line = json.dumps([index, _summarize(blobs[index], isolate=False)])
                handle.write(line + "\n")
                handle.flush()  # the parent reads progress, and what survives a crash
    except BaseException:
        code = 1
    os._exit(code)


def _die_with_parent(parent: int) -> None:  # pragma: no cover - runs in the child
    """Ask Linux to SIGKILL this process when its parent dies (prctl PR_SET_PDEATHSIG)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the between-files check still ends the child
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _wait(children: list[tuple[int, str]]) -> list[str | None]:
    """Reap every child; per child, why it failed (None: exit status 0)."""
    failures: list[str | None] = [None] * len(children)
    running = dict(enumerate(children))
    progress = {number: (-1, time.monotonic()) for number in running}
    while running:
        for number, (pid, out) in list(running.items()):
            try:
                reaped, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:  # reaped by someone else (a SIGCHLD handler)
                del running[number]
                failures[number] = "the parser process ended unexpectedly"
                continue
            if reaped:
                del running[number]
                if os.WIFSIGNALED(status):
                    name = signal.Signals(os.WTERMSIG(status)).name
                    failures[number] = f"the parser died on it ({name})"
                elif os.WEXITSTATUS(status) != 0:
                    failures[number] = "the parser failed on it"
                continue
            size = _size(out)
            seen, since = progress[number]
            now = time.monotonic()
            if size != seen:
                progress[number] = (size, now)
            elif now - since > CHILD_TIMEOUT:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                del running[number]
                failures[number] = f"parsing it took longer than {CHILD_TIMEOUT:.0f} s"
        if running:
            time.sleep(_POLL)
    return failures


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return -1


def _kill_all(pids: list[int]) -> None:
    """SIGKILL and reap every child still there (after an error or Ctrl-C in the parent)."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
