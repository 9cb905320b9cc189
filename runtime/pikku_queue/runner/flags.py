"""The worker's options, declared once.

`WorkerFlags` is the declaration and the values alike: each field is one command-line flag
(`lease_ms` is `--lease-ms`), its annotation the flag's type, its default the flag's default,
and its metadata (`about(...)`) the help text, metavar, minimum, environment variable and
whether `--help` shows it. `FLAGS` reads them back as `Flag`s, from which every front end is
built, so none of them repeats a flag or its help:

* the runner's argparse parser (`arguments.parser`: `python -m pikku_queue worker`, the
  generated `redis_worker.py`), which parses into a `WorkerFlags`;
* `pikkugen worker`'s typer options (in the generator: the runtime never imports typer);
* the command line of a `--processes N` child (`children.child_command`, through
  `Flag.words`), which the child's parser reads back into the same values.

Adding a worker option is one field here plus its use (usually in `serving.serve`).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from pikku_queue.adapters import DEFAULT_URL, URL_ENVIRONMENT_VARIABLE

DEFAULT_GRACE_S = 30.0
DEFAULT_LEASE_MS = 30_000
DEFAULT_METRICS_HOST = "127.0.0.1"

BACKEND_HELP = (
    f"Backend URL (default: set_default_backend, ${URL_ENVIRONMENT_VARIABLE}, [tool.pikkugen] "
    f"backend (the registry's BACKEND_URL), then {DEFAULT_URL})."
)

_ABOUT = "pikku_queue.flag"


@dataclass(frozen=True)
class _About:
    help: str
    metavar: str | None
    minimum: float | None
    env: str | None
    hidden: bool


def about(
    help: str,
    *,
    metavar: str | None = None,
    minimum: float | None = None,
    env: str | None = None,
    hidden: bool = False,
) -> Mapping[str, Any]:
    """A `WorkerFlags` field's metadata: what its flag says and accepts beyond type and default.

    `minimum`: the smallest value the parsers accept (`--concurrency 0` is refused there, with
    the flag's name, before anything starts). `env`: the environment variable that stands for
    the flag when it is not given; the parsers do not read it (the backend URL order does, after
    `set_default_backend`), but a child process gets the value through it instead of its command
    line, where `ps` would show a password. `hidden`: accepted, not shown by `--help`."""
    return {_ABOUT: _About(help, metavar, minimum, env, hidden)}


@dataclass(frozen=True)
class Flag:
    """One command-line option as every front end needs it."""

    #: `--lease-ms`.
    name: str
    #: The `WorkerFlags` field (and argparse/typer destination): `lease_ms`.
    dest: str
    #: The value's type as annotated: `int`, `int | None`, `bool`, `str | None`…
    annotation: Any
    default: Any
    help: str
    metavar: str | None = None
    minimum: float | None = None
    env: str | None = None
    hidden: bool = False

    @property
    def kind(self) -> type[Any]:
        """The value's type without `None`: `bool` (a switch), `int`, `float`, `str`, `Path`…"""
        kinds = [k for k in typing.get_args(self.annotation) if k is not types.NoneType]
        if not kinds:
            return typing.cast(type[Any], self.annotation)
        [kind] = kinds
        return typing.cast(type[Any], kind)

    @property
    def switch(self) -> bool:
        """A flag that takes no value (`--burst`): present is True."""
        return self.kind is bool

    def words(self, value: Any) -> list[str]:
        """`value` written on a command line, so this flag's parser reads it back: nothing for
        the default, `--burst` for a switch that is on, else `--lease-ms 5000`."""
        if value == self.default:
            return []
        if self.switch:
            return [self.name] if value else []
        return [self.name, repr(value) if isinstance(value, float) else str(value)]


@dataclass(frozen=True)
class WorkerFlags:
    """What a worker's command line says, one field per flag (the order of `--help`)."""

    backend: str | None = field(
        default=None,
        metadata=about(BACKEND_HELP, metavar="URL", env=URL_ENVIRONMENT_VARIABLE),
    )
    #: As given (`a,b`); `split_queues` makes the list.
    queues: str | None = field(
        default=None, metadata=about("Comma-separated queues (default: all).", metavar="A,B")
    )
    concurrency: int | None = field(
        default=None,
        metadata=about(
            "Jobs at once per queue (default: each processor's).", metavar="N", minimum=1
        ),
    )
    burst: bool = field(default=False, metadata=about("Exit when the queues are drained."))
    strict: bool = field(
        default=False,
        metadata=about("Refuse to start on a registry older than its sources (else a warning)."),
    )
    grace: float = field(
        default=DEFAULT_GRACE_S,
        metadata=about(
            f"Seconds active jobs get to finish on stop (default {DEFAULT_GRACE_S:g}).",
            metavar="S",
            minimum=0,
        ),
    )
    lease_ms: int = field(
        default=DEFAULT_LEASE_MS,
        metadata=about(
            f"Job lease; a dead worker's jobs return after it (default {DEFAULT_LEASE_MS}).",
            metavar="MS",
            minimum=100,
        ),
    )
    metrics_port: int | None = field(
        default=None,
        metadata=about(
            "Serve Prometheus /metrics on this port (needs the [metrics] extra).",
            metavar="PORT",
            minimum=0,
        ),
    )
    metrics_host: str = field(
        default=DEFAULT_METRICS_HOST,
        metadata=about(
            f"Address of the /metrics server (default {DEFAULT_METRICS_HOST}).", metavar="HOST"
        ),
    )
    processes: int = field(
        default=1,
        metadata=about(
            "Run N worker processes, each with its own backend connection (default 1: this "
            "process), their log lines prefixed [i] instead of a live display; --metrics-port "
            "PORT serves process i on PORT+i.",
            metavar="N",
            minimum=1,
        ),
    )
    log_level: str = field(
        default="INFO", metadata=about("Logging level (default INFO).", metavar="LEVEL")
    )
    #: `pkg.module:function` called with every worker event: how `pikkugen worker --processes`
    #: hands its children `[tool.pikkugen] events`.
    events_hook: str | None = field(
        default=None,
        metadata=about("Called with every worker event.", metavar="PKG.MOD:FUNC", hidden=True),
    )


def flags_of(values: type[Any]) -> tuple[Flag, ...]:
    """The flags a dataclass declares, one per field (`about(...)` in its metadata), in field
    order: `WorkerFlags`'s, or a front end's own (`pikkugen worker`'s project flags)."""
    hints = typing.get_type_hints(values)
    return tuple(
        Flag(
            name="--" + f.name.replace("_", "-"),
            dest=f.name,
            annotation=hints[f.name],
            default=f.default,
            **vars(f.metadata[_ABOUT]),
        )
        for f in fields(values)
    )


def split_queues(text: str | None) -> list[str] | None:
    """`--queues a,b` as a list (None: every queue)."""
    if not text:
        return None
    return [q.strip() for q in text.split(",") if q.strip()] or None


#: Every worker option, in `--help` order.
FLAGS = flags_of(WorkerFlags)

#: The generated package a runner serves: `python -m pikku_queue worker` requires it, a
#: generated `redis_worker.py` fixes it, a child gets its parent's. Not a `WorkerFlags` field:
#: it says what to serve, not how (`pikkugen worker` has its own, defaulting to the project's).
REGISTRY = Flag(
    name="--registry",
    dest="registry",
    annotation=str,
    default=None,
    help="The generated package (e.g. shop.generated); it must be importable.",
    metavar="PKG",
)
