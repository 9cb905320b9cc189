"""The page and its files: plain HTML/JS/CSS shipped in the wheel (`static/`).

No Node build step and nothing from a CDN: the page is filled in here (its CSRF token, the
masked backend URL) and fetches everything else from the JSON API.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from pikku_queue.adapters import masked_url
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

from pikkugen.web_monitor.state import monitor_state


def static_dir() -> Path:
    return Path(str(files("pikkugen.web_monitor") / "static"))


def static_files() -> StaticFiles:
    """`/static`: the page's script and style sheet, as files."""
    return StaticFiles(directory=static_dir())


async def index(request: Request) -> Response:
    """`/`: the page, read per request and never cached, since it embeds this process's CSRF
    token."""
    config = monitor_state(request).config
    page = (static_dir() / "index.html").read_text(encoding="utf-8")
    page = page.replace("{{csrf}}", config.csrf).replace(
        "{{backend}}", masked_url(config.url).replace("<", "&lt;")
    )
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})
