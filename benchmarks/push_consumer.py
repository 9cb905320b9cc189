"""The push-consumer core's verdicts per second on a 100-message batch, next to the SQS Lambda
handler and the Cloudflare Worker consumer (both adapters of that core) on the same batch.

    .venv/bin/python benchmarks/push_consumer.py            # 50 batches of 100
    .venv/bin/python benchmarks/push_consumer.py -b 200

Every message completes (a no-op async processor, concurrency 10), so the figures are the
per-message cost of each path, not of a backend: (a) `pikku_queue.push.consume` with a sink
that only counts; (b) `SQSLambdaHandler(event, context)`, whose completed records need no SQS
request (Lambda deletes them), against a local moto server for its one queue-URL lookup;
(c) `CloudflareWorker.queue(batch, env)` with plain Python stand-ins for Cloudflare's
Message objects (ack/retry). The baseline is (a), measured in the same run, also with the
timeout cap both adapters set (the invocation's remaining time: every job then runs under
`asyncio.wait_for`), which is most of what separates them from the bare core. The last line
is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

os.environ.setdefault("AWS_ACCESS_KEY_ID", "benchmark")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "benchmark")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

sys.path.insert(0, str(Path(__file__).resolve().parent))

BATCH = 100
QUEUE = "bench"


async def noop(data: dict[str, Any]) -> int:
    return 0


def options() -> Any:
    from pikku_queue.options import ProcessorOptions

    return ProcessorOptions(concurrency=10)


def registry() -> Any:
    from pikku_queue.registry import QueueEntry, Registry

    return Registry([QueueEntry(name=QUEUE, function=f"{__name__}:noop", options=options())])


def bodies() -> list[str]:
    return [json.dumps({"n": i}) for i in range(BATCH)]


def core_run(batches: int, capped: bool = False) -> float:
    from pikku_queue.engine import Engine
    from pikku_queue.processor import Processor
    from pikku_queue.push import PushMessage, consume

    engine = Engine(Processor.from_function(QUEUE, noop, options()))
    messages = [
        PushMessage(message_id=str(i), body=b, attempt=1, enqueued_at_ms=0)
        for i, b in enumerate(bodies())
    ]

    class Sink:
        settled = 0

        async def settle(self, message: Any, delivery: Any, outcome: Any) -> bool:
            self.settled += 1
            return True

        async def give_back(self, message: Any) -> None:
            return None

    async def run() -> float:
        sink = Sink()
        started = time.perf_counter()
        for _ in range(batches):
            await consume(engine, messages, sink, remaining_ms=(lambda: 60_000) if capped else None)
        elapsed = time.perf_counter() - started
        assert sink.settled == batches * BATCH
        return elapsed

    return batches * BATCH / asyncio.run(run())


def lambda_run(batches: int) -> float:
    import boto3
    from moto.server import ThreadedMotoServer
    from pikku_queue.adapters.sqs.lambda_handler import make_handler

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per call
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url=endpoint)
        url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
        arn = f"arn:aws:sqs:us-east-1:123456789012:{QUEUE}"
        event = {
            "Records": [
                {
                    "messageId": str(uuid.uuid4()),
                    "receiptHandle": f"handle-{i}",
                    "body": b,
                    "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0"},
                    "messageAttributes": {},
                    "eventSource": "aws:sqs",
                    "eventSourceARN": arn,
                }
                for i, b in enumerate(bodies())
            ]
        }
        prefix = url.rsplit("/", 1)[0] + "/"
        handler = make_handler(
            registry(),
            backend_url=f"sqs://?region=us-east-1&endpoint_url={endpoint}&prefix={prefix}",
        )
        context = SimpleNamespace(get_remaining_time_in_millis=lambda: 60_000)
        handler(event, context)  # cold start (services, queue URL) outside the timing
        started = time.perf_counter()
        for _ in range(batches):
            response = handler(event, context)
            assert response["batchItemFailures"] == []
        elapsed = time.perf_counter() - started
        handler.close()
    finally:
        server.stop()
    return batches * BATCH / elapsed


def cloudflare_run(batches: int) -> float:
    from pikku_queue.adapters.cloudflare import CloudflareWorker

    class Message:
        __slots__ = ("attempts", "body", "id", "timestamp", "verdict")

        def __init__(self, i: int) -> None:
            self.id, self.body, self.attempts, self.timestamp = str(i), {"n": i}, 1, 0
            self.verdict: str | None = None

        def ack(self) -> None:
            self.verdict = self.verdict or "ack"

        def retry(self, delaySeconds: int | None = None) -> None:
            self.verdict = self.verdict or "retry"

    worker = CloudflareWorker(registry())
    env = SimpleNamespace()

    async def run() -> float:
        elapsed = 0.0
        for _ in range(batches + 1):
            messages = [Message(i) for i in range(BATCH)]
            batch = SimpleNamespace(queue=QUEUE, messages=messages)
            started = time.perf_counter()
            await worker.queue(batch, env)
            if worker.stats.count(QUEUE, "completed") > BATCH:  # the first is the cold start
                elapsed += time.perf_counter() - started
            assert all(m.verdict == "ack" for m in messages)
        return elapsed

    return batches * BATCH / asyncio.run(run())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-b", "--batches", type=int, default=50)
    args = parser.parse_args()
    results: dict[str, Any] = {"batch": BATCH, "batches": args.batches}
    results["core_verdicts_per_s"] = round(core_run(args.batches))
    results["core_capped_verdicts_per_s"] = round(core_run(args.batches, capped=True))
    results["lambda_verdicts_per_s"] = round(lambda_run(args.batches))
    results["cloudflare_verdicts_per_s"] = round(cloudflare_run(args.batches))
    core = results["core_verdicts_per_s"]
    for name in ("core", "core_capped", "lambda", "cloudflare"):
        value = results[f"{name}_verdicts_per_s"]
        results[f"{name}_ratio_to_core"] = round(value / core, 2)
        ratio = results[f"{name}_ratio_to_core"]
        print(f"{name:12} {value:>9} verdicts/s  ({ratio} of the core)")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
