"""SQS throughput and cost against a local moto_server: the adapter next to raw boto3.

    .venv/bin/python benchmarks/throughput_sqs.py            # 500 jobs, concurrency 10
    .venv/bin/python benchmarks/throughput_sqs.py -n 1000 -c 20 --repeat 5

moto is not AWS: it serves one request at a time and slows down as a queue grows (it scans and
copies the queue's messages on every receive), so the jobs/s say how close the adapter gets
to moto's own ceiling, measured in the same run by (b), and nothing about AWS. (a) pikkugen:
bulk enqueue of N jobs (`enqueue_many`), then a burst long-poll worker with a no-op processor;
(b) raw boto3 at the floor: SendMessageBatch of 10, ReceiveMessage of 10, DeleteMessageBatch
of 10, in a single thread, with the same messages on the wire (JSON body and the four pikku_*
attributes); interleaved rounds, the median of each reported, with jobs/s "from worker start to
last completion" (N / process time) and "enqueue plus process" (N / (enqueue + process time)),
as benchmarks/throughput.py names them. Requests are counted by a botocore event hook (every HTTP attempt,
retries included); AWS bills each one, and the floor is 0.3 per job. The last line is one JSON
object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

os.environ.setdefault("AWS_ACCESS_KEY_ID", "benchmark")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "benchmark")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _noop(data: dict[str, Any]) -> int:
    return 0


class RequestCounter:
    """Counts the requests a boto3 client sends, per operation (botocore's before-send)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def attach(self, client: Any) -> None:
        client.meta.events.register("before-send.sqs", self._count)

    def _count(self, request: Any, **_: Any) -> None:
        target = request.headers.get("X-Amz-Target", b"")
        operation = (target.decode() if isinstance(target, bytes) else str(target)).split(".")[-1]
        self.counts[operation or "?"] = self.counts.get(operation or "?", 0) + 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())


async def pikkugen_run(endpoint: str, n: int, concurrency: int) -> dict[str, Any]:
    from pikku_queue.adapters.sqs.backend import from_url
    from pikku_queue.backend import WorkerOptions
    from pikku_queue.processor import Processor
    from pikku_queue.records import EnqueueRequest

    backend = from_url(
        f"sqs://?region=us-east-1&endpoint_url={endpoint}&create_queues=true&wait_time_seconds=1"
    )
    counter = RequestCounter()
    counter.attach(backend.api.client)
    try:
        await backend.api.queue_url("bench")  # the queue's creation is not a job's cost
        counter.counts.clear()
        started = time.perf_counter()
        for chunk in range(0, n, 1000):
            await backend.enqueue_many(
                [
                    EnqueueRequest(queue="bench", payload={"n": i})
                    for i in range(chunk, min(n, chunk + 1000))
                ]
            )
        enqueued = time.perf_counter()
        report = await backend.run_worker(
            WorkerOptions(
                processors=[Processor.from_function("bench", _noop)],
                concurrency=concurrency,
                burst=True,
            )
        )
        done = time.perf_counter()
    finally:
        await backend.close()
    assert report.completed == n, report
    return {
        "enqueue_per_s": round(n / (enqueued - started), 1),
        "process_per_s": round(n / (done - enqueued), 1),
        "end_to_end_per_s": round(n / (done - started), 1),
        "requests": dict(sorted(counter.counts.items())),
        "requests_per_job": round(counter.total / n, 3),
    }


def raw_boto3_run(endpoint: str, n: int) -> dict[str, Any]:
    import boto3

    client = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    url = client.create_queue(QueueName="raw")["QueueUrl"]
    counter = RequestCounter()
    counter.attach(client)
    started = time.perf_counter()
    for start in range(0, n, 10):
        entries = [
            {"Id": str(i), "MessageBody": json.dumps({"n": start + i}), "MessageAttributes": {
                # The same message as pikkugen's on the wire: its four bookkeeping attributes.
                "pikku_job_id": {"DataType": "String", "StringValue": uuid.uuid4().hex},
                "pikku_queue": {"DataType": "String", "StringValue": "raw"},
                "pikku_enqueued_at": {"DataType": "Number", "StringValue": str(time.time_ns())},
                "pikku_attempts_made": {"DataType": "Number", "StringValue": "0"},
            }}
            for i in range(min(10, n - start))
        ]  # fmt: skip
        client.send_message_batch(QueueUrl=url, Entries=entries)  # type: ignore[arg-type]
    sent = time.perf_counter()
    received = 0
    while received < n:
        messages = client.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if messages:
            client.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )
        received += len(messages)
    done = time.perf_counter()
    return {
        "enqueue_per_s": round(n / (sent - started), 1),
        "process_per_s": round(n / (done - sent), 1),
        "end_to_end_per_s": round(n / (done - started), 1),
        "requests": dict(sorted(counter.counts.items())),
        "requests_per_job": round(counter.total / n, 3),
    }


def one_run(moto: Path, name: str, n: int, concurrency: int) -> dict[str, Any]:
    """One contender on a fresh moto_server of its own (so neither sees the other's queues)."""
    port = _free_port()
    server = subprocess.Popen(
        [str(moto), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        endpoint = f"http://127.0.0.1:{port}"
        _wait_for(port)
        if name == "pikkugen":
            return asyncio.run(pikkugen_run(endpoint, n, concurrency))
        return raw_boto3_run(endpoint, n)
    finally:
        server.terminate()
        server.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=500, help="jobs")
    parser.add_argument("-c", type=int, default=10, help="worker concurrency")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (odd: a true median)")
    args = parser.parse_args()
    moto = Path(sys.executable).with_name("moto_server")
    results: dict[str, Any] = {"n": args.n, "concurrency": args.c, "rounds": args.repeat}
    rounds: dict[str, list[dict[str, Any]]] = {"pikkugen": [], "raw_boto3": []}
    for run in range(args.repeat):
        # Interleaved, each round starting with the other: a noisy neighbour hits no one
        # systematically (moto on a shared machine varies by 2x from one minute to the next).
        order = ["pikkugen", "raw_boto3"] if run % 2 == 0 else ["raw_boto3", "pikkugen"]
        for name in order:
            rounds[name].append(one_run(moto, name, args.n, args.c))
    for name, values in rounds.items():
        results[name] = sorted(values, key=lambda v: v["end_to_end_per_s"])[len(values) // 2]
        per_round = " ".join(str(v["end_to_end_per_s"]) for v in values)
        print(f"{name} (median round): {results[name]}; end to end/s per round: {per_round}")
    a, b = results["pikkugen"], results["raw_boto3"]
    print(
        f"requests per job: pikkugen {a['requests_per_job']}, raw boto3 {b['requests_per_job']}, "
        "floor 0.3 (goal <= 0.35)"
    )
    names = {"enqueue_per_s": "enqueue", "process_per_s": "from worker start to last completion",
             "end_to_end_per_s": "enqueue plus process"}  # fmt: skip
    for key, label in names.items():
        results[f"{key}_ratio"] = round(a[key] / b[key], 2)
        print(
            f"pikkugen / raw boto3 {label:37} {results[f'{key}_ratio']}  (goal >= 0.9);"
            f" jobs/s {a[key]} vs {b[key]}"
        )
    print(json.dumps(results))
    return 0


def _wait_for(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"moto_server did not listen on port {port}")


if __name__ == "__main__":
    raise SystemExit(main())
