"""The worker's options are declared once (`pikku_queue.runner.flags`): `python -m pikku_queue
worker`, a generated `redis_worker.py` and `pikkugen worker` offer the same flags with the same
help, as a user sees them in `--help` (real subprocesses), and a `--processes N` child's command
line reads back, through the runner's own parser, to exactly the options its parent was given."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from pikku_queue.registry import Registry
from pikku_queue.runner import FLAGS, REGISTRY, Flag, WorkerFlags, WorkerRun, parser, worker_flags
from pikku_queue.runner.children import child_command, child_flags
from pikkugen.commands.worker import PROJECT_FLAGS

PIKKUGEN = str(Path(sys.executable).parent / "pikkugen")
SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop"

#: The flags `--help` shows (hidden ones are accepted, not shown): name -> (metavar, help).
SHOWN = {
    flag.name: (flag.metavar, " ".join(flag.help.split())) for flag in FLAGS if not flag.hidden
}


def help_of(*command: str, cwd: Path, **env: str) -> str:
    done = subprocess.run(
        command,
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "400", "TERMINAL_WIDTH": "400", **env},
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def argparse_options(text: str) -> dict[str, tuple[str | None, str]]:
    """`--flag METAVAR  help` rows of an argparse `--help` (continuation lines joined)."""
    rows: dict[str, list[str]] = {}
    metavars: dict[str, str | None] = {}
    current: list[str] | None = None
    for line in text.split("options:", 1)[1].splitlines():
        row = re.match(r"^  (-\S+(?:, -\S+)*)(?: ([^\s-]\S*))?(?:\s{2,}(.*))?$", line)
        if row:
            name = row.group(1).split(", ")[-1]
            metavars[name] = row.group(2)
            current = rows[name] = [row.group(3) or ""]
        elif line.startswith("    ") and current is not None:
            current.append(line.strip())
    return {name: (metavars[name], " ".join(" ".join(rows[name]).split())) for name in rows}


def rich_options(text: str) -> dict[str, tuple[str | None, str]]:
    """`│ --flag  METAVAR [x>=1]  help │` rows of typer's rich `--help` (continuations joined);
    the `[x>=N]` typer adds after a metavar (the declared minimum) is left off."""
    rows: dict[str, list[str]] = {}
    metavars: dict[str, str | None] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        inner = re.match(r"^│ (.*?)\s*│$", line)
        if not inner:
            continue
        cells = re.split(r"\s{2,}", inner.group(1).strip())
        if cells[0].startswith("--"):
            name, *rest = cells
            metavar = rest[0].split(" [x")[0] if len(rest) > 1 else None
            metavars[name] = metavar
            current = rows[name] = [rest[-1] if rest else ""]
        elif current is not None:
            current.append(inner.group(1).strip())
    return {name: (metavars[name], " ".join(" ".join(rows[name]).split())) for name in rows}


def test_every_front_end_offers_the_declared_flags_with_the_declared_help(tmp_path: Path) -> None:
    runner = argparse_options(
        help_of(sys.executable, "-m", "pikku_queue", "worker", "--help", cwd=tmp_path)
    )
    redis_worker = argparse_options(
        help_of(
            sys.executable, "-m", "shop.generated.redis_worker", "--help",
            cwd=tmp_path, PYTHONPATH=str(SHOP / "src"),
        )
    )  # fmt: skip
    pikkugen = rich_options(help_of(PIKKUGEN, "worker", "--help", cwd=tmp_path))
    for shown in (runner, redis_worker, pikkugen):
        shown.pop("--help")
    assert {name: runner[name] for name in SHOWN} == SHOWN
    assert {name: pikkugen[name] for name in SHOWN} == SHOWN
    # Beyond the shared flags: the runner's --registry, a generated worker nothing (its
    # package is fixed), pikkugen only its PROJECT_FLAGS.
    assert set(runner) - set(SHOWN) == {REGISTRY.name}
    assert runner[REGISTRY.name] == (REGISTRY.metavar, REGISTRY.help)
    assert redis_worker == SHOWN
    assert set(pikkugen) - set(SHOWN) == {flag.name for flag in PROJECT_FLAGS}
    for flag in PROJECT_FLAGS:
        assert pikkugen[flag.name][1] == " ".join(flag.help.split())


def test_hidden_flags_are_accepted_by_both_commands(tmp_path: Path) -> None:
    hidden = [flag for flag in FLAGS if flag.hidden]
    assert [flag.name for flag in hidden] == ["--events-hook"]
    for flag in hidden:  # an unknown option would fail before --help is shown
        help_of(PIKKUGEN, "worker", flag.name, "x:y", "--help", cwd=tmp_path)
        args = parser().parse_args(["worker", "--registry", "p", flag.name, "x:y"])
        assert getattr(worker_flags(args), flag.dest) == "x:y"


def other_than_default(flag: Flag) -> Any:
    """A value of `flag`'s type that is not its default and passes its minimum."""
    least = flag.minimum or 0
    values = {bool: True, int: int(least) + 7, float: least + 2.5, str: f"{flag.dest}-value"}
    return values[flag.kind]


def test_a_child_command_line_round_trips_every_flag() -> None:
    given = WorkerFlags(**{flag.dest: other_than_default(flag) for flag in FLAGS})
    assert all(getattr(given, flag.dest) != flag.default for flag in FLAGS)
    args, env = child_command(given, "shop.generated")
    assert args[:3] == ["-m", "pikku_queue", "worker"]
    parsed = parser().parse_args(args[2:])
    assert parsed.registry == "shop.generated"
    # A flag with an environment variable (the backend URL) travels in it, not in argv.
    by_env = [flag for flag in FLAGS if flag.env is not None]
    assert [flag.name for flag in by_env] == ["--backend"]
    assert env == {flag.env: getattr(given, flag.dest) for flag in by_env if flag.env}
    assert not [arg for arg in args if given.backend and given.backend in arg]
    assert worker_flags(parsed) == replace(given, **{flag.dest: flag.default for flag in by_env})


def test_defaults_make_a_bare_child_command_line() -> None:
    args, env = child_command(WorkerFlags(), "shop.generated")
    assert (args, env) == (["-m", "pikku_queue", "worker", "--registry", "shop.generated"], {})
    assert worker_flags(parser().parse_args(args[2:])) == WorkerFlags()


def test_each_child_gets_the_resolved_run_and_its_own_metrics_port() -> None:
    flags = WorkerFlags(queues=None, processes=3, metrics_port=9100, burst=True, grace=1.5)
    run = WorkerRun(Registry([]), "sqlite:///q.db", ["a", "b"], flags)
    assert child_flags(run, 2) == replace(
        flags, backend="sqlite:///q.db", queues="a,b", processes=1, metrics_port=9102
    )
    any_port = WorkerRun(Registry([]), "memory://", ["a"], replace(flags, metrics_port=0))
    assert child_flags(any_port, 1).metrics_port == 0
    no_server = WorkerRun(Registry([]), "memory://", ["a"], replace(flags, metrics_port=None))
    assert child_flags(no_server, 1).metrics_port is None
