"""The one place diagnostics become text, and the one rule for the process exit code.

Format (like compilers, so editors and CI annotate the line):
`path:line:col: error[PK103]: message` then `  hint: ...` on its own line when there is a hint.
Missing parts are left out (`path: warning[PK003]: ...`, `pikkugen: error[PK004]: ...`).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Sequence
from typing import TextIO

from pikkugen.model import Diagnostic

#: Exit codes: everything is current / `--check` found stale output / an error diagnostic.
EXIT_OK = 0
EXIT_STALE = 1
EXIT_ERROR = 2


def _where(d: Diagnostic) -> str:
    if d.path is None:
        return "pikkugen"
    if d.line is None:
        return d.path
    if d.column is None:
        return f"{d.path}:{d.line}"
    return f"{d.path}:{d.line}:{d.column}"


def _one_line(text: str) -> str:
    """Messages quote user strings; a newline in one must not forge a second diagnostic line."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


#: ANSI SGR codes per level (bold red, bold yellow, bold cyan) and for the hint (dim).
_COLOURS = {"error": "1;31", "warning": "1;33", "info": "1;36"}
_DIM = "2"


def _paint(text: str, code: str, colour: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if colour else text


def render(d: Diagnostic, *, colour: bool = False) -> str:
    level = _paint(f"{d.level}[{d.code}]", _COLOURS[d.level], colour)
    text = f"{_where(d)}: {level}: {_one_line(d.message)}"
    if d.hint:
        text += "\n  " + _paint(f"hint: {_one_line(d.hint)}", _DIM, colour)
    return text


def render_all(ds: Iterable[Diagnostic], *, colour: bool = False) -> str:
    """Every diagnostic in a stable order, one per entry, ending with a newline (or "").
    With `colour`, the level and hint carry ANSI colours (`use_colour` decides)."""
    ordered = sorted(ds, key=lambda d: d.sort_key())
    return "".join(render(d, colour=colour) + "\n" for d in ordered)


def use_colour(stream: TextIO) -> bool:
    """Colour only on a terminal, and never when `NO_COLOR` is set (https://no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def exit_code(ds: Iterable[Diagnostic], *, stale: bool) -> int:
    if any(d.is_error for d in ds):
        return EXIT_ERROR
    return EXIT_STALE if stale else EXIT_OK


def suggest(name: str, known: Sequence[str]) -> str | None:
    """The known name `name` most likely meant, for a `did you mean` hint: its snake_case
    spelling (`deadLetterQueue`, `maxDelay` as the seed writes them), else the closest by
    spelling (`concurency`), else None."""
    snake = to_snake(name)
    if snake in known:
        return snake
    close = difflib.get_close_matches(snake, list(known), n=1, cutoff=0.6)
    return close[0] if close else None


def to_snake(name: str) -> str:
    """`deadLetterQueue` -> `dead_letter_queue` (and `-` read as `_`)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower().replace("-", "_")
