"""Time as a dependency, so tests never sleep through a backoff.

The embedded backends read "now" from a clock instead of the system, and the worker sleeps
through it. `VirtualClock.sleep` jumps forward instead of waiting, which turns a retry that
waits a minute into an instant one while keeping every stored timestamp consistent.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    #: True when `sleep` jumps instead of waiting: a worker may then sleep straight to the next
    #: due job instead of polling its way there.
    jumps: bool

    def now_ms(self) -> int: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """Wall-clock time (epoch milliseconds) and real sleeping."""

    jumps = False

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0))


class VirtualClock:
    """A clock that only moves when told to, or when someone sleeps on it."""

    jumps = True

    def __init__(self, start_ms: int | None = None) -> None:
        self._now = start_ms if start_ms is not None else time.time_ns() // 1_000_000

    def now_ms(self) -> int:
        return self._now

    def advance(self, ms: int) -> None:
        self._now += max(int(ms), 0)

    async def sleep(self, seconds: float) -> None:
        # Jump, then yield once so other tasks see the new time before the sleeper resumes.
        self.advance(int(seconds * 1000))
        await asyncio.sleep(0)


SYSTEM_CLOCK = SystemClock()
