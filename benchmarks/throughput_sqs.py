"""SQS throughput against a local moto_server: what the adapter costs next to raw boto3.

    .venv/bin/python benchmarks/throughput_sqs.py            # 500 jobs, concurrency 10
    .venv/bin/python benchmarks/throughput_sqs.py -n 1000 -c 20

moto is not AWS: it serves one request at a time and slows down as a queue grows (it scans and
copies the queue's messages on every receive), so the figures say how close the adapter gets
to moto's own ceiling, measured in the same run by (b), and nothing about AWS. (a) pikkugen:
enqueue N jobs concurrently, then a burst long-poll worker with a no-op processor; (b) raw
boto3: SendMessageBatch, then ReceiveMessage + DeleteMessage one by one in a single thread.
The last line is one JSON object.
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


async def pikkugen_run(endpoint: str, n: int, concurrency: int) -> dict[str, float]:
    from pikku_queue.adapters.sqs import from_url
    from pikku_queue.backend import EnqueueRequest, WorkerOptions
    from pikku_queue.engine import Processor

    backend = from_url(
        f"sqs://?region=us-east-1&endpoint_url={endpoint}&create_queues=true&wait_time_seconds=1"
    )
    try:
        started = time.perf_counter()
        await asyncio.gather(
            *(backend.enqueue(EnqueueRequest(queue="bench", payload={"n": i})) for i in range(n))
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
    }


def raw_boto3_run(endpoint: str, n: int) -> dict[str, float]:
    import boto3

    client = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    url = client.create_queue(QueueName="raw")["QueueUrl"]
    started = time.perf_counter()
    for start in range(0, n, 10):
        entries = [{"Id": str(i), "MessageBody": "{}"} for i in range(min(10, n - start))]
        client.send_message_batch(QueueUrl=url, Entries=entries)  # type: ignore[arg-type]
    sent = time.perf_counter()
    received = 0
    while received < n:
        messages = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        for message in messages:
            client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        received += len(messages)
    done = time.perf_counter()
    return {
        "send_batch_per_s": round(n / (sent - started), 1),
        "receive_delete_per_s": round(n / (done - sent), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=500, help="jobs")
    parser.add_argument("-c", type=int, default=10, help="worker concurrency")
    args = parser.parse_args()
    moto = Path(sys.executable).with_name("moto_server")
    results: dict[str, Any] = {"n": args.n, "concurrency": args.c}
    for name in ("pikkugen", "raw_boto3"):  # a fresh server each, so neither sees the other
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
                results[name] = asyncio.run(pikkugen_run(endpoint, args.n, args.c))
            else:
                results[name] = raw_boto3_run(endpoint, args.n)
        finally:
            server.terminate()
            server.wait()
        print(f"{name}: {results[name]}")
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
