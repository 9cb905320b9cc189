"""End to end: examples/shop generated for the sqs runtime, its `sqs_lambda.handler` imported
from the written files and fed a Lambda event built from messages received from moto."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest
from pikkugen.config import load_config
from pikkugen.generate import generate
from sqs_support import FakeLambdaContext, Queues

pytestmark = pytest.mark.sqs

SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop"
PACKAGE = "shop_sqs_generated"


def test_generated_handler_serves_the_shop_email_queue(
    tmp_path: Path, queues: Queues, backend_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = generate(load_config(SHOP))
    assert not result.has_errors
    for relative, text in result.files.items():
        target = tmp_path / PACKAGE / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    monkeypatch.syspath_prepend(str(SHOP / "src"))
    monkeypatch.syspath_prepend(str(tmp_path))
    # what template.yaml sets on the email function
    monkeypatch.setenv("PIKKU_QUEUE_URL", backend_url)
    monkeypatch.setenv("PIKKU_QUEUE", "email-queue")
    queues.create("email-dlq")
    queues.create("email-queue", dlq="email-dlq")
    for to in ("ann@example.com", "bob@bounce.invalid"):
        queues.sqs.send_message(
            QueueUrl=queues.url("email-queue"),
            MessageBody=json.dumps({"to": to, "subject": "Hi", "body": "Welcome"}),
        )

    module = importlib.import_module(f"{PACKAGE}.sqs_lambda")
    try:
        event = queues.lambda_event("email-queue", queues.receive("email-queue"))
        response = module.handler(event, FakeLambdaContext())
        queues.lambda_deletes("email-queue", event, response)
    finally:
        module.handler.close()
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]

    failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    bodies = {r["messageId"]: json.loads(r["body"])["to"] for r in event["Records"]}
    assert [bodies[i] for i in failed] == ["bob@bounce.invalid"]  # BounceError: retried
    # the bounce waits for its 1 s backoff (email-queue: exponential, delay 1000)
    assert queues.depth("email-queue") == {"visible": 0, "in_flight": 1, "delayed": 0}
