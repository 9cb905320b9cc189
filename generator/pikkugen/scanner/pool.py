"""Summarise many files: cache first, then parse the misses, in parallel when it pays.

Parallel parsing forks worker processes (cheap: libcst is already imported) that write their
summaries as JSON lines to a temporary file each; the parent reads them back and alone writes
the cache. No pickle is involved, not even for inter-process traffic. Forking is skipped when
the process runs other threads (fork would copy their locks mid-use) or the platform has no
fork; the misses are then parsed in-process.
"""

from __future__ import annotations

import importlib
import json
import os
import tempfile
import threading
from collections.abc import Sequence
from typing import cast

from pikkugen.scanner.cache import SummaryCache, content_key
from pikkugen.scanner.summary import ModuleSummary

#: Fewer misses than this are parsed in-process: a fork costs about as much as two parses.
PARALLEL_THRESHOLD = 12


def _summarize(data: bytes) -> ModuleSummary:
    from pikkugen.scanner.parse import summarize

    # a JSON round trip, so a fresh summary has exactly the shape of a cached one
    return cast(ModuleSummary, json.loads(json.dumps(summarize(data))))


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
        if summary is None:  # in-process, or a worker that died before finishing
            summary = _summarize(blobs[index])
        results[index] = summary
        problem = summary["problem"]
        if cache is not None and (problem is None or problem["code"] != "PK900"):
            cache.put(keys[index], summary)  # a scanner bug is not remembered past a fix
    return [r for r in results if r is not None], len(misses), processes


def _in_children(blobs: list[bytes], workers: int) -> dict[int, ModuleSummary]:
    """Fork `workers` children; child k summarises blobs k, k+workers, ... into its own file."""
    importlib.import_module("pikkugen.scanner.parse")  # once here, not once per child
    found: dict[int, ModuleSummary] = {}
    with tempfile.TemporaryDirectory(prefix="pikkugen-scan-") as folder:
        children: list[tuple[int, str]] = []
        for worker in range(workers):
            out = os.path.join(folder, f"{worker}.jsonl")
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the child, which never returns
                code = 0
                try:
                    with open(out, "w", encoding="utf-8") as handle:
                        for index in range(worker, len(blobs), workers):
                            line = json.dumps([index, _summarize(blobs[index])])
                            handle.write(line + "\n")
                except BaseException:
                    code = 1
                os._exit(code)
            children.append((pid, out))
        for pid, out in children:
            os.waitpid(pid, 0)
            try:
                with open(out, encoding="utf-8") as handle:
                    for line in handle:
                        index, summary = json.loads(line)
                        found[int(index)] = cast(ModuleSummary, summary)
            except (OSError, ValueError):
                pass  # whatever is missing is parsed in-process by the caller
    return found
