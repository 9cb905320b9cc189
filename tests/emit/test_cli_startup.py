"""What `pikkugen scan` does not need, it does not import (start-up time of a pre-commit hook):
the run-time commands, the runtime's client/monitor/adapters, rich's live display. Pinned by
module names in a fresh interpreter, never by timings."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """
import json, sys
from pikkugen.cli import command
try:
    command({argv!r})(prog_name="pikkugen", args={argv!r})
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)))
"""

NOT_FOR_SCAN = [
    "pikkugen.commands.worker",
    "pikkugen.commands.enqueue",
    "pikkugen.commands.dlq",
    "pikkugen.commands.display",
    "pikkugen.commands.project",
    "pikkugen.commands.monitor",
    "pikku_queue.client",
    "pikku_queue.monitor",
    "pikku_queue.engine",
    "pikku_queue.adapters.cloudflare.consumer",
    "rich.progress",
    "asyncio",
]


def loaded(argv: list[str]) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(argv=argv)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("argv", [["scan", "--help"], ["list", "--help"]])
def test_a_generate_time_command_loads_no_run_time_code(argv: list[str]) -> None:
    assert loaded(argv) & set(NOT_FOR_SCAN) == set()


def test_a_run_time_command_gets_the_run_time_group() -> None:
    assert "pikkugen.commands.worker" in loaded(["worker", "--help"])
