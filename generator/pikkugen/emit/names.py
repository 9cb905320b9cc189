"""Python identifiers and file names derived from queue names, injection-proof and stable.

Queue names come from user code. They may hold characters no identifier allows, be Python
keywords, start with a digit, or collide once sanitised (`email-queue`, `email.queue`,
`Email_Queue`). Every derived name here is ASCII `[a-z0-9_]`, always used behind a prefix,
and de-duplicated in sorted order, so the same set of names always gives the same result.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from pikku_queue.options import queue_name_problem

_NOT_ALNUM = re.compile(r"[^0-9a-z]+")


def base_identifier(name: str) -> str:
    """`Email-Queue` -> `email_queue`; accents are folded, anything else becomes `_`."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return _NOT_ALNUM.sub("_", folded.lower()).strip("_") or "queue"


def assign_identifiers(names: Iterable[str]) -> dict[str, str]:
    """Queue name -> identifier stem, unique even with the `_sync` twin every stem gets
    (`a` would emit `enqueue_a_sync`, which `a-sync` must therefore not take).

    A name that already is its own identifier (`email_queue`) is served first, so it keeps
    its obvious function name whatever else collides with it; the rest go in sorted order.
    """
    taken: set[str] = set()
    result: dict[str, str] = {}
    for name in sorted(set(names), key=lambda n: (base_identifier(n) != n, n)):
        base = base_identifier(name)
        stem, n = base, 1
        while stem in taken or f"{stem}_sync" in taken:
            n += 1
            stem = f"{base}_{n}"
        taken.update((stem, f"{stem}_sync"))
        result[name] = stem
    return result


def assign_file_stems(names: Iterable[str]) -> dict[str, str]:
    """Queue name -> file name stem for `schemas/<stem>.input.json`.

    A valid queue name is used as is (readers look for it); anything else, or a name that
    would clash with another on a case-insensitive file system, falls back to its identifier.
    """
    taken: set[str] = set()
    result: dict[str, str] = {}
    for name in sorted(set(names)):
        safe = queue_name_problem(name) is None and not name.startswith(".")
        base = name if safe else base_identifier(name)
        stem, n = base, 1
        while stem.lower() in taken:
            n += 1
            stem = f"{base}-{n}"
        taken.add(stem.lower())
        result[name] = stem
    return result
