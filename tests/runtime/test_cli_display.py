"""The worker's terminal display, rendered into a string as a terminal would receive it."""

from __future__ import annotations

import asyncio
import io

from pikku_queue.adapters.memory.backend import MemoryBackend
from pikku_queue.monitor import QueueMonitor
from pikku_queue.records import EnqueueRequest
from pikkugen.commands.display import _watch, print_stats
from rich.console import Console


async def test_terminal_shows_bars_then_a_stats_table() -> None:
    backend = MemoryBackend()
    await backend.enqueue_many([EnqueueRequest("shown", n) for n in range(3)])
    monitor = QueueMonitor(queues=["shown"], backend=backend)
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160, color_system=None)
    stop = asyncio.Event()
    stop.set()  # one refresh, then return
    await _watch(monitor, stop, console, tty=True, interval=0.01)
    print_stats(await monitor.all_stats(), console, tty=True)
    text = out.getvalue()
    assert "shown" in text and "0/3" in text  # the bar: nothing done of three
    assert "queue stats" in text and "dead-lettered" in text and "p95 ms" in text
    await backend.close()
