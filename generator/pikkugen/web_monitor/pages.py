"""The page and its files: plain HTML/JS/CSS shipped in the wheel (`static/`), and uPlot for
the charts (`static/vendor/`, from npm by `scripts/vendor-uplot`, with its licence).

No Node build step and nothing from a CDN. The page is filled in here (its CSRF token, the
masked backend URL) and fetches everything else from the JSON API. Static files are served
from a fixed list read once (`STATIC`), behind the same checks as the API: no path from a
request ever reaches the file system.
"""

from __future__ import annotations

import functools
from importlib.resources import files
from pathlib import Path

from pikku_queue.adapters import masked_url
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from pikkugen.web_monitor.auth import BadRequest
from pikkugen.web_monitor.state import monitor_state

#: The files `/static/<name>` serves, with their media types.
STATIC: dict[str, str] = {
    "monitor.js": "text/javascript; charset=utf-8",
    "monitor.css": "text/css; charset=utf-8",
    "vendor/uPlot.iife.min.js": "text/javascript; charset=utf-8",
    "vendor/uPlot.min.css": "text/css; charset=utf-8",
    "vendor/uPlot.LICENSE": "text/plain; charset=utf-8",
}


def static_dir() -> Path:
    return Path(str(files("pikkugen.web_monitor") / "static"))


@functools.cache
def _static(name: str) -> bytes:
    return (static_dir() / name).read_bytes()


async def static_file(request: Request) -> Response:
    """`/static/{name}`: one of `STATIC`, or 404."""
    name = request.path_params["name"]
    if name not in STATIC:
        raise BadRequest(404, "no such file")
    return Response(_static(name), media_type=STATIC[name])


def _escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


async def index(request: Request) -> Response:
    """`/`: the page, never cached, since it embeds this process's CSRF token."""
    config = monitor_state(request).config
    page = (static_dir() / "index.html").read_text(encoding="utf-8")
    page = page.replace("{{csrf}}", _escape(config.csrf)).replace(
        "{{backend}}", _escape(masked_url(config.url))
    )
    return HTMLResponse(page)
