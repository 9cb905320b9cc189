"""The scanner's diagnostic codes: one table, so codes stay stable and the README can copy it.

| code  | level   | meaning                                                                    |
|-------|---------|----------------------------------------------------------------------------|
| PK001 | error   | the file is not valid Python (position from CPython's own parser)          |
| PK002 | error   | the file's bytes cannot be decoded with its declared/default encoding      |
| PK003 | warning | the file is larger than `max_file_bytes`; it was skipped                   |
| PK004 | error   | the file or folder cannot be read (missing path, permission, ...)          |
| PK005 | error   | CPython accepts the file but libcst cannot parse it                        |
| PK006 | error   | the file nests too deeply to analyse (or its parser process died)          |
| PK007 | warning | two files map to the same module name; the second is ignored               |
| PK008 | warning | a FIFO, socket or device named `*.py`; skipped without opening it blocking |
| PK101 | error   | a processor must be declared at module level (importable by the registry)  |
| PK102 | error   | the queue name is missing or not a literal string                          |
| PK103 | error   | the queue name is invalid (letters, digits, `-`, `_`, `.`, <= 80 chars)    |
| PK104 | error   | the queue name is declared twice in the tree                               |
| PK105 | error   | unexpected positional argument in a declaration                            |
| PK106 | error   | `add_queue_processor(func=...)` is missing or not a function name          |
| PK107 | error   | `func=` does not resolve to a module-level function of the scanned tree    |
| PK108 | info    | a call named like a declaration is not pikku_queue's; it was ignored       |
| PK109 | error   | the processor's module name is not importable (not an identifier path)     |
| PK110 | error   | the processor's function name is bound again later in its module           |
| PK201 | error   | an option value is not a literal                                           |
| PK202 | error   | unknown option keyword                                                     |
| PK203 | error   | an option value is invalid (message from the runtime's pydantic models)    |
| PK204 | error   | a name used in an option cannot be followed to a module-level literal      |
| PK205 | error   | the dead-letter queue is the queue itself                                  |
| PK206 | error   | dead-letter queues form a cycle (`a` -> `b` -> `a`)                        |
| PK207 | warning | the dead-letter queue is another processor's queue                         |
| PK301 | error   | a payload parameter or the return value has no annotation                  |
| PK302 | error   | an annotation uses something other than names, subscripts, `\\|`, constants |
| PK303 | error   | a name in an annotation cannot be resolved                                 |
| PK304 | error   | a batch processor must take and return `list[X]`                           |
| PK305 | error   | the processor's signature is not `(data)` or `(ctx, data)`                 |
| PK900 | error   | internal scanner error (a bug in pikkugen: please report it)               |
"""

from __future__ import annotations

from typing import Final

from pikkugen.model import Diagnostic, Level

LEVELS: Final[dict[str, Level]] = {
    "PK001": "error",
    "PK002": "error",
    "PK003": "warning",
    "PK004": "error",
    "PK005": "error",
    "PK006": "error",
    "PK007": "warning",
    "PK008": "warning",
    "PK101": "error",
    "PK102": "error",
    "PK103": "error",
    "PK104": "error",
    "PK105": "error",
    "PK106": "error",
    "PK107": "error",
    "PK108": "info",
    "PK109": "error",
    "PK110": "error",
    "PK201": "error",
    "PK202": "error",
    "PK203": "error",
    "PK204": "error",
    "PK205": "error",
    "PK206": "error",
    "PK207": "warning",
    "PK301": "error",
    "PK302": "error",
    "PK303": "error",
    "PK304": "error",
    "PK305": "error",
    "PK900": "error",
}

LITERAL_HINT: Final = (
    "options must be literals so pikkugen can read them without importing your code: "
    "write the value out, or name a module-level constant assigned a literal"
)


def diagnostic(
    code: str,
    message: str,
    *,
    path: str | None = None,
    line: int | None = None,
    column: int | None = None,
    hint: str | None = None,
) -> Diagnostic:
    """Build a diagnostic whose level comes from the table, so a code never changes level."""
    return Diagnostic(
        level=LEVELS[code],
        code=code,
        message=message,
        hint=hint,
        path=path,
        line=line,
        column=column,
    )
