"""The runtime stands alone: both wheels built, only the pikku-queue wheel (with [redis,sqs])
installed into a fresh venv, none of the generator's libraries there, and in that venv the
example app's jobs run to completion on SQLite and on Redis with `python -m pikku_queue worker
--registry shop.generated`, and the generated Lambda handler runs a synthetic SQS event
against moto."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
import zipfile
from pathlib import Path

import pytest
from redis_server import RedisServer
from runtime_venv import GENERATOR_ONLY, build_wheels, importable, runtime_only_venv
from sqs_support import Queues

pytestmark = [pytest.mark.slow, pytest.mark.sqs, pytest.mark.redis]

REPO = Path(__file__).resolve().parents[2]
SHOP = REPO / "examples" / "shop"

LAMBDA = """
import json, sys
from shop.generated.sqs_lambda import handler


class Context:
    aws_request_id = "synthetic"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


with open(sys.argv[1]) as f:
    event = json.load(f)
try:
    print(json.dumps(handler(event, Context())))
finally:
    handler.close()
"""


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return build_wheels(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="session")
def runtime_python(tmp_path_factory: pytest.TempPathFactory, wheels: tuple[Path, Path]) -> Path:
    return runtime_only_venv(tmp_path_factory.mktemp("runtime-venv") / "venv", wheels[0])


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A copy of the example app with its generated package, without any old queue file."""
    target = tmp_path / "shop"
    shutil.copytree(SHOP, target, ignore=shutil.ignore_patterns(".pikku", "__pycache__"))
    return target


def _env(shop: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIKKU_QUEUE_URL")}
    return {**env, "PYTHONPATH": str(shop / "src"), **extra}


def _run(python: Path, shop: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(python), *args],
        cwd=shop,
        env=_env(shop, **env),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_the_wheels_split_runtime_and_generator(wheels: tuple[Path, Path]) -> None:
    runtime, generator = wheels
    runtime_files = zipfile.ZipFile(runtime).namelist()
    generator_files = zipfile.ZipFile(generator).namelist()
    assert "pikku_queue/runner/__init__.py" in runtime_files
    assert not [n for n in runtime_files if n.startswith("pikkugen/")]
    assert not [n for n in generator_files if n.startswith("pikku_queue/")]
    assert "pikkugen/templates/sqs/sqs_lambda.py.j2" in generator_files


def test_the_runtime_venv_holds_none_of_the_generator(runtime_python: Path) -> None:
    assert importable(runtime_python, GENERATOR_ONLY) == []
    assert importable(runtime_python, ("pikku_queue", "pydantic", "bullmq", "boto3")) == [
        "pikku_queue",
        "pydantic",
        "bullmq",
        "boto3",
    ]


def _jobs_run_to_completion(python: Path, shop: Path, **env: str) -> str:
    _run(python, shop, "-m", "shop.demo", **env)  # the seed's jobs, through the generated client
    worker = _run(
        python, shop, "-m", "pikku_queue", "worker", "--registry", "shop.generated", "--burst",
        "--grace", "5", **env,
    )  # fmt: skip
    [done] = [line for line in worker.stdout.splitlines() if line.startswith("worker done:")]
    return done


def test_example_jobs_on_sqlite(runtime_python: Path, shop: Path) -> None:
    done = _jobs_run_to_completion(runtime_python, shop)
    # the seed: 30 jobs complete, three dead-letter (the bounce, the poisoned item, the unknown
    # task), the flaky task and the bounce retry
    assert "completed=30" in done and "dead_lettered=3" in done and "failed=0" in done, done
    assert (shop / ".pikku" / "shop.db").is_file()  # the registry's BACKEND_URL, anchored


def test_example_jobs_on_redis(runtime_python: Path, shop: Path, redis_server: RedisServer) -> None:
    url = f"{redis_server.url}?prefix=wheel{uuid.uuid4().hex[:8]}"
    done = _jobs_run_to_completion(runtime_python, shop, PIKKU_QUEUE_URL=url)
    assert "completed=30" in done and "dead_lettered=3" in done and "failed=0" in done, done
    assert not (shop / ".pikku" / "shop.db").exists()  # $PIKKU_QUEUE_URL came first


def test_generated_lambda_handler_on_moto(
    runtime_python: Path, shop: Path, queues: Queues, backend_url: str, tmp_path: Path
) -> None:
    queues.create("email-dlq")
    queues.create("email-queue", dlq="email-dlq")
    for to in ("ann@example.com", "bob@bounce.invalid"):
        queues.sqs.send_message(
            QueueUrl=queues.url("email-queue"),
            MessageBody=json.dumps({"to": to, "subject": "Hi", "body": "Welcome"}),
        )
    event = queues.lambda_event("email-queue", queues.receive("email-queue"))
    (tmp_path / "event.json").write_text(json.dumps(event))
    (tmp_path / "invoke.py").write_text(LAMBDA)
    done = _run(
        runtime_python, shop, str(tmp_path / "invoke.py"), str(tmp_path / "event.json"),
        PIKKU_QUEUE_URL=backend_url, PIKKU_QUEUE="email-queue",
    )  # fmt: skip
    response = json.loads(done.stdout.splitlines()[-1])
    queues.lambda_deletes("email-queue", event, response)
    failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    bodies = {r["messageId"]: json.loads(r["body"])["to"] for r in event["Records"]}
    assert [bodies[i] for i in failed] == ["bob@bounce.invalid"]  # BounceError: retried
    assert queues.depth("email-queue") == {"visible": 0, "in_flight": 1, "delayed": 0}
