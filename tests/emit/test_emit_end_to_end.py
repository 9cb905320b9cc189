"""Generated code on the real runtime: a job enqueued through the generated client (and one
through the standalone client) is run by `pikkugen worker` from the generated registry, and
the typed handle returns the processor's result. SQLite file, real processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from golden import CASES

CLI = [sys.executable, "-c", "from pikkugen.cli import main; main()"]

ENQUEUE = """
import json, sys
from pikku_queue.client import set_default_backend
from basic_app.models import Email
from basic_gen.client import enqueue_email_queue_sync, queue_job_sync
from pikku_queue.errors import PayloadValidationError
set_default_backend(sys.argv[1])
ids = [enqueue_email_queue_sync(Email(to="a@b.c", subject="hi", body="x")).id]
ids.append(queue_job_sync("cleanup-task", {"days": 7}).id)
from shop_client.client import enqueue_email_queue_sync as standalone_enqueue
from shop_client.models.q_email_queue import Email as StandaloneEmail
ids.append(standalone_enqueue(StandaloneEmail(to="s@b.c", subject="s", body="y")).id)
try:
    enqueue_email_queue_sync({"to": "missing fields"})
except PayloadValidationError:
    ids.append("refused")
print(json.dumps(ids))
"""

RESULTS = """
import asyncio, json, sys
from pikku_queue.adapters import connect
from basic_gen.client import QUEUE_EMAIL_QUEUE
async def main():
    backend = connect(sys.argv[1])
    ids = json.loads(sys.argv[2])
    infos = [await backend.get_job(q, i) for q, i in zip(["email-queue", "cleanup-task", "email-queue"], ids)]
    sent = QUEUE_EMAIL_QUEUE.output.validate_python(infos[0].result)
    print(json.dumps([[str(i.state), i.result] for i in infos] + [type(sent).__name__]))
    await backend.close()
asyncio.run(main())
"""


def run(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_enqueue_work_and_read_the_result(tmp_path: Path) -> None:
    project = tmp_path / "basic"
    shutil.copytree(CASES / "basic", project, ignore=shutil.ignore_patterns("expected", "use_*"))
    env = {**os.environ, "PYTHONPATH": str(project / "src")}
    run([*CLI, "scan", "--no-cache"], project, env)
    schemas = project / "src" / "basic_gen" / "schemas"
    run([*CLI, "client", str(schemas), "--out", "src/shop_client"], project, env)
    url = f"sqlite:///{tmp_path / 'queue.db'}"

    ids = json.loads(run([sys.executable, "-c", ENQUEUE, url], project, env))
    assert ids[-1] == "refused"  # a bad payload never reaches the queue
    run([*CLI, "worker", "--burst", "--backend", url], project, env)
    done = json.loads(run([sys.executable, "-c", RESULTS, url, json.dumps(ids[:3])], project, env))
    assert done == [
        ["completed", {"message_id": "1", "status": "sent"}],
        ["completed", 0],
        ["completed", {"message_id": "1", "status": "sent"}],
        "Sent",
    ]
