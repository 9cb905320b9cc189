"""Backends chosen by URL. Each scheme's module is imported only when its URL is used, so a
process that only needs SQLite never imports redis or boto3."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from pikku_queue.backend import Backend
from pikku_queue.errors import BackendError

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
    scheme = urlsplit(url).scheme
    target = _SCHEMES.get(scheme)
    if target is None:
        known = ", ".join(f"{s}://" for s in sorted(_SCHEMES))
        raise BackendError(f"unknown backend URL scheme in {url!r}; known: {known}")
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
    """`url` with its password replaced by `***`, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))
