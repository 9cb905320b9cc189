"""The one object every handler and check reads: `request.app.state.monitor`.

Handlers are module-level functions, so what a closure used to capture lives here: the
config (from `create_app` on, so the checks and the page work before anything is opened)
and the backend with its `QueueMonitor`, opened by the app's lifespan (`opened`) because a
backend's connection belongs to the event loop that serves the requests.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from pikku_queue.adapters import connect
from pikku_queue.backend import (
    Backend,
    CancelsJobs,
    CleansJobs,
    ListsJobs,
    PausesQueues,
    PromotesJobs,
    RemovesJobs,
    RetriesJobs,
)
from pikku_queue.capabilities import MONITOR_FEATURES, Feature
from pikku_queue.monitor import QueueMonitor
from starlette.requests import Request

from pikkugen.web_monitor.config import MonitorConfig

#: The protocol behind each of the monitor's features (`pikku_queue.backend`); replaying dead
#: letters is part of every `Backend`.
_PROTOCOLS: dict[Feature, type] = {
    "list_jobs": ListsJobs,
    "retry_job": RetriesJobs,
    "remove_job": RemovesJobs,
    "promote_job": PromotesJobs,
    "pause_queue": PausesQueues,
    "clean_jobs": CleansJobs,
    "replay_dead_letters": Backend,
    "cancel": CancelsJobs,
    "cancel_running": CancelsJobs,
}
#: What the monitor may offer: its own features, and cancelling a job.
ACTION_FEATURES: frozenset[Feature] = MONITOR_FEATURES | {"cancel", "cancel_running"}


def offered(backend: Backend) -> frozenset[Feature]:
    """What the monitor offers on `backend`: each feature its capabilities declare and whose
    protocol it implements, so neither a declaration nor a method alone turns a button on."""
    return frozenset(
        feature
        for feature in ACTION_FEATURES
        if backend.capabilities.supports(feature) and isinstance(backend, _PROTOCOLS[feature])
    )


class MonitorState:
    def __init__(self, config: MonitorConfig, backend: Backend | None = None) -> None:
        self.config = config
        #: A backend the caller owns (a test's): used as is and left open.
        self._given = backend
        self._backend: Backend | None = None
        self._queue_monitor: QueueMonitor | None = None
        #: What this backend lets the monitor show and do (`offered`), once opened.
        self.features: frozenset[Feature] = frozenset()

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            raise RuntimeError("the monitor's backend is opened by the app's lifespan")
        return self._backend

    @property
    def queue_monitor(self) -> QueueMonitor:
        """The statistics over the queues and their dead-letter queues."""
        if self._queue_monitor is None:
            raise RuntimeError("the monitor's backend is opened by the app's lifespan")
        return self._queue_monitor

    @contextlib.asynccontextmanager
    async def opened(self) -> AsyncIterator[None]:
        """Open `config.url` (unless a backend was given) for the app's lifetime; close it."""
        backend = self._given or connect(self.config.url)
        self._backend = backend
        self.features = offered(backend)
        self._queue_monitor = QueueMonitor(
            queues=self.config.known_queues,
            backend=backend,
            window_ms=self.config.window_ms,
        )
        try:
            yield
        finally:
            if self._given is None:
                await backend.close()


def monitor_state(request: Request) -> MonitorState:
    """The state of the app serving `request` (Starlette types `app.state` as Any)."""
    state: MonitorState = request.app.state.monitor
    return state
