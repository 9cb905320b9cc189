"""Summarise many files: cache first, then parse the misses, in parallel when it pays.

A process pool costs a few tens of milliseconds to start, about the price of two parses, so
it is used only for enough misses. Workers get bytes and return the summary as JSON text;
nothing is pickled to disk and the parent alone writes the cache.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import cast

from pikkugen.scanner.cache import SummaryCache, content_key
from pikkugen.scanner.summary import ModuleSummary

#: Fewer misses than this are parsed in-process.
PARALLEL_THRESHOLD = 12


def _summarize_json(data: bytes) -> str:
    from pikkugen.scanner.parse import summarize

    return json.dumps(summarize(data), separators=(",", ":"))


def summarize_all(
    blobs: Sequence[bytes], *, cache: SummaryCache | None, jobs: int | None
) -> tuple[list[ModuleSummary], int]:
    """Summaries in the order of `blobs`, and how many were parsed (cache misses)."""
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
    if workers > 1 and len(misses) >= PARALLEL_THRESHOLD:
        texts = _in_pool([blobs[i] for i in misses], workers)
    else:
        texts = [_summarize_json(blobs[i]) for i in misses]
    for index, text in zip(misses, texts, strict=True):
        summary = cast(ModuleSummary, json.loads(text))
        results[index] = summary
        problem = summary["problem"]
        if cache is not None and (problem is None or problem["code"] != "PK900"):
            cache.put(keys[index], summary)  # a scanner bug is not remembered past a fix
    return [r for r in results if r is not None], len(misses)


def _in_pool(blobs: list[bytes], workers: int) -> list[str]:
    # fork is cheapest (libcst already imported) but unsafe with threads running.
    method = "fork" if os.name == "posix" and threading.active_count() == 1 else "spawn"
    context = multiprocessing.get_context(method)
    chunk = max(1, len(blobs) // (workers * 4))
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return list(pool.map(_summarize_json, blobs, chunksize=chunk))
