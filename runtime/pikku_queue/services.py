"""Load the user's services factory ("pkg.module:create_services").

Services (database pools, HTTP clients) are built once per worker and handed to every job as
`ctx.services`, so a processor never opens its own connections per job. The factory may be
sync or async; the reference is a string because the generated registry names it without
importing the user's code at generate time.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from pikku_queue.errors import PikkuQueueError


class ServicesError(PikkuQueueError):
    """The services reference cannot be imported or its factory failed."""


def resolve_reference(reference: str) -> Callable[..., Any]:
    """Import "pkg.module:attribute" (or "pkg.module.attribute") and return the attribute."""
    module_name, sep, attribute = reference.partition(":")
    if not sep:
        module_name, _, attribute = reference.rpartition(".")
    if not module_name or not attribute:
        raise ServicesError(f"services reference {reference!r} must look like 'pkg.module:factory'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ServicesError(f"cannot import {module_name!r} for services: {exc}") from exc
    target: Any = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ServicesError(f"{module_name!r} has no attribute {attribute!r}") from None
    if not callable(target):
        raise ServicesError(f"services reference {reference!r} is not callable")
    return target  # type: ignore[no-any-return]


async def create_services(reference: str | None) -> Any:
    """Call the factory once (awaiting it if async); None when there is no reference."""
    if reference is None:
        return None
    factory = resolve_reference(reference)
    value = factory()
    if inspect.isawaitable(value):
        value = await value
    return value
