"""The generated Worker running on Pyodide in a Node process (node/pyodide_harness.mjs), as
one object the tests send requests to: JSON lines over the process's stdin and stdout."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from cf_support import CASE, read_jsonc
from pyodide_npm import REPO, install

HERE = Path(__file__).resolve().parent
HARNESS = HERE / "node" / "pyodide_harness.mjs"
#: How long one request may take (Pyodide's start is the slowest, a few seconds).
REQUEST_TIMEOUT_S = 120


class PyodideError(RuntimeError):
    """A request the harness answered with an error (its JavaScript stack or Python trace)."""


class PyodideWorker:
    def __init__(self, workdir: Path) -> None:
        pyodide, wheels = install()
        app = workdir / "src"
        shutil.copytree(CASE / "src", app)
        shutil.copytree(CASE / "expected", app / "cf_gen")
        wrangler = read_jsonc(CASE / "expected" / "cloudflare" / "wrangler.jsonc")
        self.consumers = {c["queue"]: c for c in wrangler["queues"]["consumers"]}
        config = {
            "pyodide": str(pyodide),
            "wheels": [str(w) for w in wheels],
            "mounts": [
                [str(REPO / "runtime"), "/repo/runtime"],
                [str(app), "/app"],
                [str(HERE / "pyodide"), "/harness"],
            ],
            "sysPath": ["/repo/runtime", "/app"],
            "modules": {"workers": "/harness/workers.py", "driver": "/harness/driver.py"},
            "main": "/app/cf_gen/cloudflare/src/cloudflare_worker.py",
            "consumers": self.consumers,
        }
        config_path = workdir / "harness.json"
        config_path.write_text(json.dumps(config))
        node = shutil.which("node")
        assert node is not None
        self.stderr = (workdir / "harness.log").open("w")
        self.proc = subprocess.Popen(
            [node, str(HARNESS), str(config_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
        )
        self.log_path = workdir / "harness.log"
        self._ids = itertools.count(1)
        ready = self._line()
        assert ready == {"ready": True}, ready

    def _line(self) -> Any:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise PyodideError(f"the harness exited:\n{self.log_path.read_text()[-4000:]}")
        return json.loads(line)

    def request(self, op: str, **fields: Any) -> Any:
        assert self.proc.stdin is not None
        request_id = next(self._ids)
        self.proc.stdin.write(json.dumps({"id": request_id, "op": op, **fields}) + "\n")
        self.proc.stdin.flush()
        answer = self._line()
        assert answer["id"] == request_id
        if not answer["ok"]:
            raise PyodideError(answer["error"])
        return answer["result"]

    def python(self, code: str) -> Any:
        """Run `code` in the Worker's Pyodide; its last expression (JSON text) decoded."""
        return self.request("python", code=code)

    def send(self, queue: str, body: Any, content_type: str | None = None, **options: Any) -> None:
        fields: dict[str, Any] = {"queue": queue, "body": body, **options}
        if content_type is not None:
            fields["contentType"] = content_type
        self.request("send", **fields)

    def drain(self, queue: str) -> None:
        self.request("drain", queue=queue)

    def state(self) -> dict[str, Any]:
        return dict(self.request("state"))

    def log(self, queue: str) -> list[tuple[Any, int, list[Any]]]:
        """(body, attempts, [kind, delay]) of every delivery of `queue`, in order."""
        return [
            (entry["body"], entry["attempts"], entry["verdict"])
            for entry in self.state()["log"]
            if entry["queue"] == queue
        ]

    def values(self, queue: str) -> list[Any]:
        """The bodies waiting in `queue`, JSON text decoded."""
        messages = self.state()["queues"].get(queue, [])
        return [
            json.loads(m["body"]) if m["contentType"] == "text" else m["body"] for m in messages
        ]

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.stderr.close()
