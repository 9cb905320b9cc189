"""Backends chosen by URL. Each scheme's module is imported only when its URL is used, so a
process that only needs SQLite never imports redis or boto3."""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable

from pikku_queue.backend import Backend
from pikku_queue.errors import BackendError
from pikku_queue.redact import redact_url

DEFAULT_URL = "sqlite:///.pikku/queue.db"
URL_ENVIRONMENT_VARIABLE = "PIKKU_QUEUE_URL"

BackendFactory = Callable[[str], Backend]

#: scheme → "module:factory" (imported lazily) or a factory registered by a third party.
_SCHEMES: dict[str, str | BackendFactory] = {
    "memory": "pikku_queue.adapters.memory:from_url",
    "sqlite": "pikku_queue.adapters.sqlite:from_url",
    "redis": "pikku_queue.adapters.redis:from_url",
    "rediss": "pikku_queue.adapters.redis:from_url",
    "sqs": "pikku_queue.adapters.sqs:from_url",
}


def register_scheme(scheme: str, factory: BackendFactory) -> None:
    """Make `scheme://…` URLs open a custom backend."""
    _SCHEMES[scheme] = factory


def default_url() -> str:
    return os.environ.get(URL_ENVIRONMENT_VARIABLE) or DEFAULT_URL


def connect(url: str | None = None) -> Backend:
    """Open the backend a URL names (default: `$PIKKU_QUEUE_URL`, else the SQLite file)."""
    url = url or default_url()
    match = re.match(r"([A-Za-z][A-Za-z0-9+.-]*):", url)  # not urlsplit: it raises on bad IPv6
    scheme = match[1] if match else ""
    target = _SCHEMES.get(scheme)
    if target is None:
        known = ", ".join(f"{s}://" for s in sorted(_SCHEMES))
        raise BackendError(f"unknown backend URL scheme in {redact_url(url)!r}; known: {known}")
    if callable(target):
        return target(url)
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        extra = {"redis": "redis", "rediss": "redis", "sqs": "sqs"}.get(scheme)
        hint = f" (install it with: pip install 'pikkugen[{extra}]')" if extra else ""
        raise BackendError(f"the {scheme}:// backend is not available: {exc}{hint}") from exc
    factory: BackendFactory = getattr(module, attribute)
    return factory(url)


def masked_url(url: str) -> str:
    """`url` with every secret masked, for logs and error messages (`redact.redact_url`)."""
    return redact_url(url)
