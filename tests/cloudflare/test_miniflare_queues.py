"""Real local queues: miniflare (the simulator `wrangler dev` runs, from npm, offline) holds
the queues with the generated wrangler.jsonc's settings, read by wrangler's own config
loader. Its consumer is a small JavaScript Worker (node/bridge.mjs) that forwards each batch
over loopback HTTP to the generated Python Worker running here in CPython and applies the
verdicts to the real messages (ack, retry with delaySeconds, the dead-letter sends first).

The Python Worker runs in CPython here (workerd downloads its Pyodide bundle at start, so a
Python Worker cannot start offline); test_pyodide_worker.py runs it on Pyodide.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import threading
import time
import types
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pikku_queue.client
import pytest
from cf_support import CASE
from pikku_queue.adapters.cloudflare import CloudflareWorker
from wrangler_npm import install

pytestmark = pytest.mark.slow

NODE_SCRIPT = Path(__file__).resolve().parent / "node" / "bridge.mjs"
DEADLINE_S = 60


@dataclass
class Delivery:
    queue: str
    body: Any  # JSON text decoded
    attempts: int
    at: float


def data_of(body: Any) -> Any:
    """A body as data: pikkugen sends JSON text."""
    if isinstance(body, str):
        try:
            return json.loads(body)
        except ValueError:
            return body
    return body


class Message:
    def __init__(self, data: dict[str, Any]) -> None:
        self.id = data["id"]
        body = data["body"]
        if isinstance(body, dict) and set(body) == {"bytes"}:
            body = bytes(body["bytes"])
        self.body = body  # what the Worker reads: JSON text (pikkugen's sends) or decoded JSON
        self.attempts = data["attempts"]
        self.timestamp = data["timestamp"]
        self.verdict: dict[str, Any] | None = None

    def ack(self) -> None:
        if self.verdict is None:
            self.verdict = {"id": self.id, "kind": "ack", "delaySeconds": None}

    def retry(self, delaySeconds: int | None = None) -> None:
        if self.verdict is None:
            self.verdict = {"id": self.id, "kind": "retry", "delaySeconds": delaySeconds}


class Binding:
    def __init__(self, name: str, sends: list[dict[str, Any]]) -> None:
        self.name = name
        self.sends = sends

    async def send(
        self,
        body: Any,
        contentType: str | None = None,
        delaySeconds: int | None = None,
    ) -> None:
        self.sends.append(
            {
                "binding": self.name,
                "body": body,
                "contentType": contentType,
                "delaySeconds": delaySeconds,
            }
        )


@dataclass
class PythonSide:
    """The HTTP end the JavaScript consumer forwards batches to."""

    module: types.ModuleType
    #: pikkugen's record queues: acked here, for the test to read
    dead_letter_queues: set[str]
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        queue = payload["queue"]
        messages = [Message(m) for m in payload["messages"]]
        with self.lock:
            now = time.monotonic()
            self.deliveries += [Delivery(queue, data_of(m.body), m.attempts, now) for m in messages]
        if queue in self.dead_letter_queues:
            return 200, {"verdicts": [{"id": m.id, "kind": "ack"} for m in messages], "sends": []}
        crash = queue not in self.module.STALLED
        if crash and any(isinstance(m.body, dict) and m.body.get("crash") for m in messages):
            return 500, {}  # the JavaScript consumer throws: Cloudflare retries the batch
        sends: list[dict[str, Any]] = []
        env = types.SimpleNamespace(**{b: Binding(b, sends) for b in self.module.BINDINGS.values()})
        batch = types.SimpleNamespace(queue=queue, messages=messages)
        entry = self.module.Default(None, env)
        future = asyncio.run_coroutine_threadsafe(entry.queue(batch), self.loop)
        future.result(timeout=30)
        verdicts = [m.verdict for m in messages if m.verdict is not None]
        return 200, {"verdicts": verdicts, "sends": sends}

    def of(self, queue: str, n: int | None = None) -> list[Delivery]:
        with self.lock:
            return [
                d
                for d in self.deliveries
                if d.queue == queue
                and (n is None or (isinstance(d.body, dict) and d.body.get("n") == n))
            ]


@pytest.fixture
def python_side(
    generated: types.ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Iterator[tuple[PythonSide, str]]:
    fresh = CloudflareWorker(
        generated.REGISTRY,
        bindings=generated.BINDINGS,
        dead_letters=generated.DEAD_LETTERS,
        crons=generated.CRONS,
        stalled=generated.STALLED,
    )
    monkeypatch.setattr(generated, "WORKER", fresh)
    # Each invocation makes its bindings the default backend; the test session gets its own back.
    request.addfinalizer(lambda: pikku_queue.client.set_default_backend(None))
    side = PythonSide(generated, set(generated.DEAD_LETTERS.values()))
    loop_thread = threading.Thread(target=side.loop.run_forever, daemon=True)
    loop_thread.start()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            status, answer = side.handle(json.loads(self.rfile.read(length)))
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    serve = threading.Thread(target=server.serve_forever, daemon=True)
    serve.start()
    try:
        yield side, f"http://127.0.0.1:{server.server_address[1]}/batch"
    finally:
        server.shutdown()
        server.server_close()
        side.loop.call_soon_threadsafe(side.loop.stop)
        loop_thread.join(timeout=5)
        side.loop.close()


@pytest.fixture
def miniflare(python_side: tuple[PythonSide, str], tmp_path: Path) -> Iterator[str]:
    prefix = install()
    node = shutil.which("node")
    assert node is not None
    config = tmp_path / "wrangler.jsonc"
    shutil.copy(CASE / "expected" / "cloudflare" / "wrangler.jsonc", config)
    log = tmp_path / "miniflare.log"
    with log.open("w") as errors:
        proc = subprocess.Popen(
            [node, str(NODE_SCRIPT), str(prefix), str(config), python_side[1]],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
    assert proc.stdout is not None and proc.stdin is not None
    try:
        line = proc.stdout.readline()
        if not line:
            pytest.fail(f"miniflare did not start:\n{log.read_text()[-3000:]}")
        yield str(json.loads(line)["url"])
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def send(url: str, binding: str, body: Any) -> None:
    data = json.dumps({"binding": binding, "body": body, "contentType": "json"}).encode()
    request = urllib.request.Request(url, data=data, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_real_queues_retry_with_attempts_and_delay_dead_letter_and_never_redeliver(
    miniflare: str, python_side: tuple[PythonSide, str]
) -> None:
    side, _ = python_side
    send(miniflare, "QUEUE_ORDERS", {"n": 1, "fail_until": 3})  # succeeds on attempt 3
    send(miniflare, "QUEUE_ORDERS", {"n": 2})  # succeeds at once
    send(miniflare, "QUEUE_ORDERS", {"n": 7, "fail_until": 99})  # fails every attempt
    send(miniflare, "QUEUE_SLOW", {"n": 0, "crash": True})  # its consumer invocation throws

    wait_for(lambda: len(side.of("orders-dlq")) == 1, "the dead-letter record")
    wait_for(lambda: len(side.of("orders", 1)) == 3, "order 1's third attempt")
    wait_for(lambda: len(side.of("slow-dlq")) == 1, "the stalled record")

    one = side.of("orders", 1)
    assert [d.attempts for d in one] == [1, 2, 3]
    # the retry delays (exponential: 1 s, then 2 s) held: never earlier
    assert one[1].at - one[0].at >= 1.0 - 0.05
    assert one[2].at - one[1].at >= 2.0 - 0.05
    assert [d.attempts for d in side.of("orders", 7)] == [1, 2, 3]
    [record] = side.of("orders-dlq")
    assert record.body["payload"] == {"n": 7, "fail_until": 99}
    assert (record.body["attempts"], record.body["reason"]) == (3, "attempts_exhausted")
    # the crashing batch came back max_retries times (slow: attempts 2 → max_retries 1), then
    # Cloudflare moved the message itself to its dead_letter_queue, slow-stalled, and the
    # Worker recorded it there as stalled in slow-dlq: one format in the records' queue
    assert [d.attempts for d in side.of("slow", 0)] == [1, 2]
    assert [d.attempts for d in side.of("slow-stalled", 0)] == [1]
    [stalled] = side.of("slow-dlq")
    assert (stalled.body["reason"], stalled.body["attempts"]) == ("stalled", 2)
    assert stalled.body["payload"] == {"n": 0, "crash": True}

    time.sleep(3)  # longer than any retry delay here: an acked message would be back by now
    assert [d.attempts for d in side.of("orders", 2)] == [1]
    assert len(side.of("orders", 1)) == 3
    assert len(side.of("orders-dlq")) == 1
