"""A private `redis-server` for tests and benchmarks: free loopback port, temp dir, AOF on.

The machine may run its own Redis on :6379; tests never touch it. AOF is on so that a restart
(the fault tests) keeps every job, as a production Redis holding a job queue should.
Importable from tests/redis, tests/interop and benchmarks (add this folder to sys.path).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

REDIS_SERVER = shutil.which("redis-server")
MISSING_REASON = (
    "redis-server is not installed (scripts/test installs the Debian package 'redis-server')"
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One redis-server subprocess that can be stopped and started again on the same port
    and data directory."""

    def __init__(
        self, directory: Path | None = None, password: str | None = None, tls: bool = False
    ) -> None:
        if REDIS_SERVER is None:
            raise RuntimeError(MISSING_REASON)
        self._own_dir = directory is None
        self.directory = directory or Path(tempfile.mkdtemp(prefix="pikku-redis-"))
        self.password = password
        self.tls = tls
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def certificate(self) -> Path:
        return self.directory / "cert.pem"

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        if self.tls:
            return f"rediss://{auth}127.0.0.1:{self.port}/0?ssl_ca_certs={self.certificate}"
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def _make_certificate(self) -> list[str]:
        """A self-signed certificate for 127.0.0.1 (needs the openssl command)."""
        if not self.certificate.exists():
            subprocess.run(
                [
                    "openssl",
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "2",
                    "-keyout",
                    str(self.directory / "key.pem"),
                    "-out",
                    str(self.certificate),
                    "-subj",
                    "/CN=127.0.0.1",
                    "-addext",
                    "subjectAltName=IP:127.0.0.1",
                ],
                check=True,
                capture_output=True,
            )
        return [
            "--port", "0", "--tls-port", str(self.port),
            "--tls-cert-file", str(self.certificate),
            "--tls-key-file", str(self.directory / "key.pem"),
            "--tls-ca-cert-file", str(self.certificate),
            "--tls-auth-clients", "no",
        ]  # fmt: skip

    @property
    def url_without_password(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        listen = self._make_certificate() if self.tls else ["--port", str(self.port)]
        args = [
            str(REDIS_SERVER),
            *listen,
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--daemonize", "no",
            "--protected-mode", "no",
            "--maxmemory-policy", "noeviction",
            "--loglevel", "warning",
            "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip
        if self.password:
            args += ["--requirepass", self.password]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            self._wait_ready()
        except BaseException:  # never leave a half-started server running behind a failure
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server exited at start: {err}{log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    if self.tls:  # the handshake is checked by the tests themselves
                        return
                    sock.sendall(b"PING\r\n")
                    reply = sock.recv(64)
                    if reply.startswith((b"+PONG", b"-NOAUTH")):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def stop(self) -> None:
        """A clean shutdown (SIGTERM: redis-server flushes the AOF before it exits)."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stderr is not None:
            self.process.stderr.close()
        self.process = None

    def restart(self, down_s: float = 0.5) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()
