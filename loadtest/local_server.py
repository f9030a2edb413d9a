"""Start the real server as a subprocess on a free port (for tests, and for --compare-passthrough)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from loadtest.netns import local_server_flags

REPO_ROOT = Path(__file__).resolve().parent.parent
# Every caller of a test or load test comes from 127.0.0.1: the per-client limits meant for the public would
# refuse the third. They are lifted here; a test of those limits passes its own (a later flag wins).
ONE_ADDRESS_FLAGS = ("--max-sessions-per-client", "1000", "--max-offers-per-minute", "100000")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RunningServer:
    url: str
    process: subprocess.Popen
    log_path: Path
    ssl_context: ssl.SSLContext | None = None  # https: trusts the server's (test) certificate

    def get_json(self, path: str) -> dict:
        with urllib.request.urlopen(self.url + path, timeout=10, context=self.ssl_context) as response:
            return json.loads(response.read())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def running_server(tmp_dir: Path, *flags: str, startup_timeout: float = 60.0,
                   cafile: Path | None = None, env: dict[str, str] | None = None) -> Iterator[RunningServer]:
    """The server with `flags` (after ONE_ADDRESS_FLAGS); with `cafile` (the certificate of --tls-cert) it serves
    https and is trusted; `env` adds environment variables (secrets: never on a command line)."""
    port = free_port()
    log_path = tmp_dir / f"server-{port}.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            # ICE on loopback (and the links of namespaces opened here, loadtest.netns): never this host's LAN address.
            [sys.executable, "-m", "server", "--host", "127.0.0.1", "--port", str(port), *local_server_flags(),
             *ONE_ADDRESS_FLAGS, *flags],
            cwd=REPO_ROOT, stdout=log_file, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
    context = None if cafile is None else ssl.create_default_context(cafile=cafile)
    server = RunningServer(f"{'https' if cafile else 'http'}://127.0.0.1:{port}", process, log_path, context)
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}:\n{server.log()}")
            with contextlib.suppress(OSError):
                if server.get_json("/healthz")["status"] == "ok":
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"server did not start in {startup_timeout}s:\n{server.log()}")
            time.sleep(0.2)
        yield server
    finally:
        stop_process(process, timeout=15)


def stop_process(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
