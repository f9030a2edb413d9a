"""Start Debian's `janus` with the project's config (deploy/janus) on free ports (for tests and benchmarks).

The config folder is copied with the HTTP port changed, and the API secret and an RTP port range are
given on the command line, so several runs (and other engineers' tests) never collide on ports.
Janus cannot gather ICE candidates on loopback, so it runs in a network namespace of its own
(loadtest.netns): its API and media are at the namespace's address, and nothing reaches the LAN address.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from loadtest.local_server import REPO_ROOT, free_port, stop_process
from loadtest.netns import Namespace, namespaces_available, network_namespace

CONFIG_DIR = REPO_ROOT / "deploy" / "janus"


@dataclass
class RunningJanus:
    url: str  # the Janus API base, http://<its namespace's address>:<port>/janus
    secret: str
    config_dir: Path
    log_path: Path
    process: subprocess.Popen
    argv: list[str]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def request(self, message: dict, path: str = "") -> dict:
        body = json.dumps({**message, "transaction": secrets.token_hex(4), "apisecret": self.secret}).encode()
        request = urllib.request.Request(self.url + path, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def videoroom(self, body: dict) -> dict:
        """One synchronous VideoRoom request on a throwaway session (what a test inspects Janus with)."""
        session = self.request({"janus": "create"})["data"]["id"]
        try:
            handle = self.request({"janus": "attach", "plugin": "janus.plugin.videoroom"}, f"/{session}")["data"]["id"]
            reply = self.request({"janus": "message", "body": body}, f"/{session}/{handle}")
            return reply["plugindata"]["data"]
        finally:
            self.request({"janus": "destroy"}, f"/{session}")

    def stop(self) -> None:
        stop_process(self.process)

    def start(self, timeout: float = 20.0) -> None:
        """(Re)start Janus on the same port and secret, and wait until its API answers."""
        log_file = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            self.process = subprocess.Popen(self.argv, stdout=log_file, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)
        finally:
            log_file.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"janus exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            with contextlib.suppress(OSError, ValueError), \
                    urllib.request.urlopen(self.url + "/info", timeout=2) as response:
                if json.loads(response.read()).get("janus") == "server_info":
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"janus did not answer in {timeout}s:\n{self.log()[-3000:]}")
            time.sleep(0.2)


def janus_available() -> bool:
    return shutil.which("janus") is not None and namespaces_available()


@contextlib.contextmanager
def running_janus(tmp_dir: Path) -> Iterator[RunningJanus]:
    with network_namespace() as namespace:
        yield from _running_janus(tmp_dir, namespace)


def _running_janus(tmp_dir: Path, namespace: Namespace) -> Iterator[RunningJanus]:
    config_dir = tmp_dir / "janus-config"
    shutil.copytree(CONFIG_DIR, config_dir, dirs_exist_ok=True)
    port = free_port()
    http_config = config_dir / "janus.transport.http.jcfg"
    http_text = re.sub(r"(?m)^\s*(ip|interface)\s*=.*\n", "", http_config.read_text())  # it listens here:
    listen = rf'\g<1>port = {port}\n\g<1>ip = "{namespace.inner_address}"'
    http_text = re.sub(r"(?m)^(\s*)port\s*=\s*\d+", listen, http_text)
    http_config.write_text(http_text)
    rtp_low = 20000 + secrets.randbelow(400) * 100  # a random 100-port slice, apart from other runs
    secret = secrets.token_hex(12)
    argv = [*namespace.exec_prefix(),
            "janus", "--configs-folder", str(config_dir), "--config", str(config_dir / "janus.jcfg"),
            "--apisecret", secret, "--rtp-port-range", f"{rtp_low}-{rtp_low + 99}", "--disable-colors"]
    url = f"http://{namespace.inner_address}:{port}/janus"
    janus = RunningJanus(url, secret, config_dir, tmp_dir / f"janus-{port}.log",
                         subprocess.Popen(["true"]), argv)
    janus.process.wait()
    janus.start()
    try:
        yield janus
    finally:
        janus.stop()
