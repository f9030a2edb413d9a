"""A real coturn (Debian's `turnserver`) for tests: loopback only, time-limited credentials (use-auth-secret)."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from loadtest.local_server import free_port, stop_process

TURNSERVER = shutil.which("turnserver")


@dataclass
class RunningTurn:
    url: str  # turn:127.0.0.1:<port>
    port: int
    secret: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _accepts_tcp(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def running_coturn(tmp_dir: Path, secret: str = "test-secret", config: Path | None = None,
                   extra_args: Sequence[str] = ()) -> Iterator[RunningTurn]:
    """coturn on a free UDP/TCP port of 127.0.0.1, relaying from 127.0.0.1 to loopback peers; with `config`
    (a turnserver.conf) its settings apply too, where the flags here do not override them; `extra_args` last.

    coturn refuses loopback peers unless told (--allow-loopback-peers, for test set-ups only); everything
    it writes (log, pid file, its database) stays in `tmp_dir`, and it never runs as a system service here."""
    assert TURNSERVER is not None, "coturn is not installed (apt-get install coturn)"
    port = free_port()
    relay_low = 40000 + port % 20000  # its own relay range, so parallel test runs do not collide
    log_path = tmp_dir / f"turnserver-{port}.log"
    argv = [
        TURNSERVER, *(["-c", str(config)] if config else ["-n"]), "--no-cli", "--no-tls", "--no-dtls", "--fingerprint",
        "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", f"--listening-port={port}",
        f"--min-port={relay_low}", f"--max-port={relay_low + 200}",
        # With a config file, that file must ask for time-limited credentials itself (use-auth-secret).
        *([] if config else ["--use-auth-secret"]), f"--static-auth-secret={secret}", "--realm=marionette.test",
        "--allow-loopback-peers", "--relay-threads=1",
        f"--pidfile={tmp_dir / f'turnserver-{port}.pid'}", f"--userdb={tmp_dir / f'turndb-{port}'}",
        # Its own log file, verbose: it logs sessions and relayed bytes (a redirected stdout would sit in a buffer).
        "-v", f"--log-file={log_path}", "--simple-log", "--no-stdout-log", *extra_args,
    ]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_dir)
    turn = RunningTurn(f"turn:127.0.0.1:{port}", port, secret, log_path)
    try:
        deadline = time.monotonic() + 15
        while not _accepts_tcp(port):  # it listens on TCP and UDP at once
            if process.poll() is not None:
                raise RuntimeError(f"turnserver exited with {process.returncode}:\n{turn.log()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"turnserver did not start:\n{turn.log()}")
            time.sleep(0.1)
        yield turn
    finally:
        stop_process(process)
