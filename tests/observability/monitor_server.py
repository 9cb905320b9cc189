"""The web monitor served by uvicorn on a thread, on a loopback address, for the tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from pikkugen.web_monitor.app import create_app
from pikkugen.web_monitor.config import MonitorConfig


@contextmanager
def serving(config: MonitorConfig, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve `config` on `host` (a free port) and yield its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(create_app(config), host=host, port=0, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "the monitor did not start"
        assert time.monotonic() < deadline, "the monitor did not start in 30 s"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{port}/"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
