"""The messages a new user met: `result()`'s TimeoutError says which job and
what to do; `pikkugen dlq list` prints a pydantic error on the record's one line."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pikku_queue.adapters.memory.backend import MemoryBackend
from pikku_queue.client import TypedQueue, known_queues
from pydantic import TypeAdapter

PIKKUGEN = [sys.executable, "-c", "from pikkugen.cli import main; main()"]


async def test_result_timeout_names_the_job() -> None:
    backend = MemoryBackend()
    queue = TypedQueue("timeout-message-test", TypeAdapter(int), TypeAdapter(int))
    try:
        handle = await queue.enqueue(1, backend=backend)
        with pytest.raises(TimeoutError) as caught:
            await handle.result(timeout=0.01)  # no worker: it cannot finish
    finally:
        known_queues.pop(queue.name, None)
        await backend.close()
    assert str(caught.value) == (
        f"job {handle.id} of queue 'timeout-message-test' did not finish within 0.01 s"
        " (it keeps running: call result() again to wait longer)"
    )


JOBS = """
from pydantic import BaseModel
from pikku_queue import JobContext, queue_processor


class Sms(BaseModel):
    to: str
    body: str


@queue_processor("sms", dead_letter_queue="sms-dlq")
async def send(ctx: JobContext, data: Sms) -> None:
    return None
"""


def test_dlq_list_prints_a_validation_error_on_one_line(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    (root / "src" / "app").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[tool.pikkugen]\npaths = ["src"]\nout = "src/app_gen"\n')
    (root / "src" / "app" / "__init__.py").write_text("")
    (root / "src" / "app" / "jobs.py").write_text(JOBS)
    env = {k: v for k, v in os.environ.items() if k != "PIKKU_QUEUE_URL"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            args, cwd=root, capture_output=True, text=True, env=env, timeout=120, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    run(*PIKKUGEN, "scan")
    # Untyped, through the registry: only JSON-checked, so the worker's validation refuses it
    # (two fields wrong: pydantic's message spans several lines).
    code = """
    import sys
    sys.path.insert(0, "src")
    import app_gen.registry
    import pikku_queue
    pikku_queue.queue_job_sync("sms", {"to": 1})
    """
    run(sys.executable, "-c", textwrap.dedent(code))
    run(*PIKKUGEN, "worker", "--burst")
    listed = run(*PIKKUGEN, "dlq", "list", "sms")
    [line] = listed.stdout.splitlines()
    assert "reason=invalid_payload" in line
    assert "ValidationError: 2 validation errors for Sms; to; Input should be" in line, line


async def test_queue_job_takes_the_seed_shaped_repeat_mapping() -> None:
    # `repeat={"cron": ...}` (the seed's shape) once raised AttributeError: 'dict' has no 'cron'.
    from pikku_queue.client import queue_job
    from pikku_queue.errors import InvalidEnqueueOptionsError
    from pikku_queue.options import ProcessorOptions
    from pikku_queue.registry import QueueEntry, Registry, known_registries

    registry = Registry([QueueEntry("nightly", "tests.nowhere", ProcessorOptions())])
    backend = MemoryBackend()
    try:
        handle = await queue_job("nightly", {}, repeat={"cron": "0 2 * * *"}, backend=backend)
        assert handle.id.startswith("repeat:")
        with pytest.raises(InvalidEnqueueOptionsError, match="cron"):
            await queue_job("nightly", {}, repeat={"cron": "0 25 * * *"}, backend=backend)
    finally:
        known_registries.remove(registry)
        await backend.close()
