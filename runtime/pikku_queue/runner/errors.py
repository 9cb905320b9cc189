"""How the runner refuses to start: one `StartError`, rendered by the command as one `error:`
line and `EXIT_START_ERROR`, never a traceback; and `described`, which names where the user's
code raised, so that one line is enough to find the bug."""

from __future__ import annotations

import sysconfig
import traceback

from pikku_queue.errors import PikkuQueueError

#: Exit status after a second signal (128 + SIGINT, as a shell reports Ctrl-C).
EXIT_SECOND_SIGNAL = 130
#: Exit status when the worker cannot start (the user's code, the backend, the arguments).
EXIT_START_ERROR = 2
#: Exit status of a `--burst` worker that ended with jobs it could not bring to a verdict
#: (`WorkerReport.undone`, the rule in `pikku_queue.burst`).
EXIT_UNDONE = 3


class StartError(PikkuQueueError):
    """The worker cannot start: printed as one `error:` line, exit code 2, no traceback."""


def described(exc: BaseException) -> str:
    """`Type: message` plus where it was raised in the user's code, for one error line."""
    if isinstance(exc, PikkuQueueError):
        return f"{type(exc).__name__}: {exc}"
    stdlib = sysconfig.get_paths()["stdlib"]
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if not f.filename.startswith(("<", stdlib))
    ]
    at = f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{at}"
