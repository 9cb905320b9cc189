"""Install hints that work where they are printed: `pip install 'pikku-queue[metrics]'` finds
nothing while the packages are installed from a checkout, not from an index, so the hint
names the checkout (or wheel) the package came from instead."""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, distribution
from urllib.parse import unquote, urlparse


def install_hint(name: str, extra: str) -> str:
    """`pip install …` for `name[extra]`, the way `name` itself was installed: from a folder
    or wheel on this machine (PEP 610's `direct_url.json`, `-e` when editable) that path, else
    the name an index knows."""
    try:
        raw = distribution(name).read_text("direct_url.json")
    except (PackageNotFoundError, OSError):
        raw = None
    try:
        info = json.loads(raw) if raw else {}
    except ValueError:
        info = {}
    url = info.get("url") if isinstance(info, dict) else None
    if isinstance(url, str) and url.startswith("file://"):
        path = unquote(urlparse(url).path)
        dir_info = info.get("dir_info")
        editable = isinstance(dir_info, dict) and dir_info.get("editable") is True
        return f"pip install {'-e ' if editable else ''}'{path}[{extra}]'"
    return f"pip install '{name}[{extra}]'"
