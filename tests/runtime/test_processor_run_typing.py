"""`ProcessorRun` is generic in the processor's output type, so mypy checks
`run.output.message_id` in a user's test (it was `Any`). A real `mypy --strict` run on a
snippet: the right uses pass, the wrong ones are reported at their lines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SNIPPET = """\
from pydantic import BaseModel
from pikku_queue import JobContext, queue_processor
from pikku_queue.testing import run_queue_processor


class Sent(BaseModel):
    message_id: str


@queue_processor("typed-run")
async def send(ctx: JobContext, data: dict[str, str]) -> Sent:
    return Sent(message_id="x")


def count(ctx: JobContext, data: list[int]) -> int:
    return len(data)


run = run_queue_processor(send, {})
ok: str = run.output.message_id
bad: int = run.output.message_id
run.output.nope
number: int = run_queue_processor(count, [1]).output
"""


def test_mypy_checks_the_output_of_a_processor_run(tmp_path: Path) -> None:
    (tmp_path / "snippet.py").write_text(SNIPPET)
    (tmp_path / "mypy.ini").write_text("[mypy]\nstrict = True\n")
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "snippet.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    errors = [line for line in checked.stdout.splitlines() if ": error:" in line]
    assert errors == [
        'snippet.py:21: error: Incompatible types in assignment (expression has type "str", '
        'variable has type "int")  [assignment]',
        'snippet.py:22: error: "Sent" has no attribute "nope"  [attr-defined]',
    ], checked.stdout + checked.stderr
