"""Backends chosen by URL: the one resolver (`resolve_backend`, `resolve_url`, `connect`).

The schemes, factories and install hints come from the catalog (`adapters.catalog`, where each
built-in backend is registered once); a backend's module is imported only when its URL is used,
so a process that only needs SQLite never imports redis or boto3."""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from pikku_queue.adapters.catalog import BY_SCHEME
from pikku_queue.errors import BackendError
from pikku_queue.install import install_hint
from pikku_queue.redact import redact_url

if TYPE_CHECKING:  # the engine and asyncio stay unloaded until a backend is opened
    from pikku_queue.backend import Backend

DEFAULT_URL = "sqlite:///.pikku/queue.db"
URL_ENVIRONMENT_VARIABLE = "PIKKU_QUEUE_URL"

BackendFactory = Callable[[str], "Backend"]

#: Factories registered by a third party (`register_scheme`), before the catalog's own.
_REGISTERED: dict[str, BackendFactory] = {}


def register_scheme(scheme: str, factory: BackendFactory) -> None:
    """Make `scheme://…` URLs open a custom backend (in this process)."""
    _REGISTERED[scheme] = factory


#: The backend `pikku_queue.set_default_backend` set (None: not set).
_default_backend: Backend | None = None


def set_default(backend: Backend | None) -> None:
    """Record the process default backend (`pikku_queue.set_default_backend` calls this)."""
    global _default_backend
    _default_backend = backend


def default_set() -> Backend | None:
    """The backend `set_default` recorded (None: not set), so a caller can restore it."""
    return _default_backend


def resolve_backend(explicit: str | None = None, configured: str | None = None) -> Backend | str:
    """THE backend resolution order, used by every caller (the typed client, `queue_job`, the
    worker runner, `pikkugen worker`/`enqueue`/`dlq`, the Lambda handler):

    1. `explicit`: the call's own backend (a `--backend` flag, a `backend=` argument);
    2. the backend `set_default_backend` set (returned as the open backend itself);
    3. `$PIKKU_QUEUE_URL`;
    4. `configured`: the generated registry's `BACKEND_URL` (`[tool.pikkugen] backend`);
    5. `DEFAULT_URL`, the SQLite file.
    """
    if explicit:
        return explicit
    if _default_backend is not None:
        return _default_backend
    return os.environ.get(URL_ENVIRONMENT_VARIABLE) or configured or DEFAULT_URL


def resolve_url(explicit: str | None = None, configured: str | None = None) -> str:
    """`resolve_backend` as a URL (the default backend's own URL at step 2)."""
    target = resolve_backend(explicit, configured)
    return target if isinstance(target, str) else target.url


def connect(url: str | None = None) -> Backend:
    """Open the backend a URL names (default: `resolve_url()`)."""
    url = url or resolve_url()
    match = re.match(r"([A-Za-z][A-Za-z0-9+.-]*):", url)  # not urlsplit: it raises on bad IPv6
    scheme = match[1] if match else ""
    registered = _REGISTERED.get(scheme)
    if registered is not None:
        return registered(url)
    entry = BY_SCHEME.get(scheme)
    if entry is None:
        known = ", ".join(f"{s}://" for s in sorted({*BY_SCHEME, *_REGISTERED}))
        raise BackendError(f"unknown backend URL scheme in {redact_url(url)!r}; known: {known}")
    if entry.factory is None:
        raise BackendError(f"a {scheme}:// backend is not opened by URL but by {entry.opened_by}")
    module_name, _, attribute = entry.factory.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = (
            f" (install it with: {install_hint('pikku-queue', entry.extra)})" if entry.extra else ""
        )
        raise BackendError(f"the {scheme}:// backend is not available: {exc}{hint}") from exc
    factory: BackendFactory = getattr(module, attribute)
    return factory(url)


def masked_url(url: str) -> str:
    """`url` with every secret masked, for logs and error messages (`redact.redact_url`)."""
    return redact_url(url)
