"""Cutting a bulk send into API calls: each call holds at most `max_items` entries and at most
`max_bytes` bytes. SQS's SendMessageBatch (10 entries, 1 MiB) and Cloudflare's `sendBatch`
(100 messages, 256 KB) have the same shape of limit, so the rule lives here once; an entry larger
than `max_bytes` on its own still gets a call of its own (the backend refuses it per entry)."""

from __future__ import annotations

from collections.abc import Sequence


def split_calls(sizes: Sequence[int], *, max_items: int, max_bytes: int) -> list[list[int]]:
    """Indexes of `sizes`, in order, cut into calls of ≤ `max_items` and ≤ `max_bytes`."""
    calls: list[list[int]] = []
    current: list[int] = []
    total = 0
    for index, size in enumerate(sizes):
        if current and (len(current) >= max_items or total + size > max_bytes):
            calls.append(current)
            current, total = [], 0
        current.append(index)
        total += size
    if current:
        calls.append(current)
    return calls
