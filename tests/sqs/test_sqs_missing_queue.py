"""An SQS worker pointed at a queue that does not exist says so once and
exits 2; it used to poll on, logging a traceback every second (a burst worker never ended)."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pikku_queue.adapters.sqs.backend import SQSQueueAdapter
from pikku_queue.adapters.sqs.client import MissingQueueError
from pikku_queue.backend import WorkerOptions
from pikku_queue.processor import Processor
from sqs_support import Queues

sys.path.insert(0, str(Path(__file__).parents[1] / "runtime"))
from test_cli import project  # noqa: F401  (a project folder with a registry)

pytestmark = pytest.mark.sqs


async def noop(data: dict[str, int]) -> None:
    return None


@pytest.mark.parametrize("burst", [True, False], ids=["burst", "long-running"])
async def test_a_missing_queue_ends_the_worker_with_one_error(
    backend: SQSQueueAdapter, queues: Queues, burst: bool, caplog: pytest.LogCaptureFixture
) -> None:
    queues.create("real")  # a queue that exists, served beside the missing one: it stops too
    processors = [Processor.from_function(n, noop) for n in ("real", "ghost")]
    options = WorkerOptions(processors=processors, burst=burst, lease_ms=1000, grace_period_s=1)
    with caplog.at_level(logging.WARNING), pytest.raises(MissingQueueError) as caught:
        await asyncio.wait_for(backend.run_worker(options), 30)
    assert "does not exist" in str(caught.value)
    assert "ghost" in str(caught.value)
    assert not [r for r in caplog.records if r.exc_info]  # no traceback logged on the way


def test_the_cli_worker_says_it_once_and_exits_2(
    project: Path,  # noqa: F811
    backend_url: str,
) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "pikkugen"), "worker", "--burst", "--queues",
         "charge", "--backend", backend_url],
        cwd=project, capture_output=True, text=True, env={**os.environ}, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if "does not exist" in line]
    assert len(errors) == 1, done.stderr
    assert errors[0].startswith("error: ")
