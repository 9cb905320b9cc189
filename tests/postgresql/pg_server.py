"""A private PostgreSQL cluster for tests and benchmarks: `initdb` in a temporary folder, a free
loopback port, its socket in that folder, trust authentication on loopback only.

The machine may run its own PostgreSQL on :5432; tests never touch it. PostgreSQL refuses to
run as root, so as root the cluster runs as the unprivileged `nobody` (through `runuser`), in
a folder it owns. Importable from tests/postgresql and benchmarks (add this folder to
sys.path).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


INITDB = _binary("initdb")
PG_CTL = _binary("pg_ctl")
POSTGRES = _binary("postgres")
MISSING_REASON = (
    "PostgreSQL's initdb/pg_ctl are not installed (scripts/test installs the Debian package"
    " 'postgresql')"
)
#: The user an as-root test session runs the cluster as.
UNPRIVILEGED_USER = "nobody"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One PostgreSQL cluster that can be stopped and started again on the same port and data
    folder. `durable=False` (the tests) turns fsync off: a clean stop still keeps every
    committed row, which is all the restart tests need; `synchronous_commit=False` (the
    benchmark) keeps fsync but lets a commit return before its WAL is flushed."""

    def __init__(
        self, *, durable: bool = False, synchronous_commit: bool = True, max_connections: int = 200
    ) -> None:
        if INITDB is None or PG_CTL is None:
            raise RuntimeError(MISSING_REASON)
        self.durable = durable
        self.synchronous_commit = synchronous_commit
        self.max_connections = max_connections
        self.directory = Path(tempfile.mkdtemp(prefix="pikku-pg-"))
        self.data = self.directory / "data"
        self.port = free_port()
        self._as_root = os.geteuid() == 0
        if self._as_root:
            shutil.chown(self.directory, UNPRIVILEGED_USER)
        self._initialised = False

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = list(args)
        if self._as_root:
            command = ["runuser", "-u", UNPRIVILEGED_USER, "--", *command]
        return subprocess.run(
            command, check=check, capture_output=True, text=True, cwd=self.directory
        )

    def _initdb(self) -> None:
        assert INITDB is not None
        self._run(
            INITDB, "-D", str(self.data), "-U", "postgres", "--auth=trust",
            "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync",
        )  # fmt: skip
        settings = [
            "listen_addresses = '127.0.0.1'",
            f"port = {self.port}",
            f"unix_socket_directories = '{self.directory}'",
            f"max_connections = {self.max_connections}",
            "shared_buffers = '128MB'",
            "log_min_messages = warning",
            "logging_collector = off",
        ]
        if not self.durable:
            settings += ["fsync = off", "full_page_writes = off"]
        if not self.durable or not self.synchronous_commit:
            settings.append("synchronous_commit = off")
        with open(self.data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write("\n".join(settings) + "\n")
        self._initialised = True

    def start(self) -> PostgresServer:
        if not self._initialised:
            self._initdb()
        assert PG_CTL is not None
        result = self._run(
            PG_CTL, "-D", str(self.data), "-l", str(self.directory / "postgres.log"),
            "-w", "-t", "60", "start", check=False,
        )  # fmt: skip
        if result.returncode != 0:
            log = (self.directory / "postgres.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"postgres did not start: {result.stdout}{result.stderr}{log}")
        self._wait_ready()
        return self

    def _wait_ready(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"postgres did not answer on port {self.port}")

    def stop(self, mode: str = "fast") -> None:
        """`fast`: disconnect every client and shut down cleanly (a server restart as an
        operator does it); `immediate`: as if the server crashed."""
        if not self._initialised or not (self.data / "postmaster.pid").exists():
            return
        assert PG_CTL is not None
        self._run(PG_CTL, "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def restart(self, down_s: float = 0.5) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()

    def close(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()


if __name__ == "__main__":  # a server for a manual session: prints its URL, stops on Enter
    with PostgresServer() as server:
        print(server.url, flush=True)
        input()
