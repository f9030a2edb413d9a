"""Start Debian's `janus` with the project's config (deploy/janus) on free ports (for tests and benchmarks).

The config folder is copied with the WebSocket port changed and Janus is started the way the image starts
it, by deploy/janus/start.sh: the API secret goes in by environment into a file only this user reads,
never on a command line. An RTP port range is passed on, so several runs (and other engineers' tests)
never collide on ports. With `admin=True` the copy also opens Janus's admin API on loopback with a secret
of its own (the shipped config keeps it off): tests count the handles Janus holds through it.
Janus cannot gather ICE candidates on loopback, so it runs in a network namespace of its own
(loadtest.netns): its API and media are at the namespace's address, and nothing reaches the LAN address.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from loadtest.local_server import REPO_ROOT, free_port, stop_process
from loadtest.netns import Namespace, namespaces_available, network_namespace

CONFIG_DIR = REPO_ROOT / "deploy" / "janus"
START_SCRIPT = CONFIG_DIR / "start.sh"
VIDEOROOM = "janus.plugin.videoroom"
Call = Callable[[dict], Awaitable[dict]]


@dataclass
class RunningJanus:
    url: str  # the Janus WebSocket API, ws://<its namespace's address>:<port>
    secret: str  # Janus's API secret (the servers' MARIONETTE_SFU_SECRET)
    room_key_secret: str  # what the servers sharing this Janus derive room keys from (never given to Janus)
    config_dir: Path  # the config Janus was started from (its running copy, with the secret, is in run_dir)
    run_dir: Path
    log_path: Path
    process: subprocess.Popen
    argv: list[str]
    env: dict[str, str]
    admin_url: str | None = None
    admin_secret: str | None = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def server_env(self) -> dict[str, str]:
        """The environment that points an avatar server at this Janus (the secrets stay off its command line)."""
        return {"MARIONETTE_SFU": "janus", "MARIONETTE_SFU_URL": self.url, "MARIONETTE_SFU_SECRET": self.secret,
                "MARIONETTE_ROOM_KEY_SECRET": self.room_key_secret}

    def request(self, message: dict) -> dict:
        """One Janus API request on a connection of its own (Janus ends its sessions when it closes)."""
        return over_websocket(self.url, "janus-protocol", lambda call: call(message), {"apisecret": self.secret})

    def videoroom(self, body: dict) -> dict:
        """One synchronous VideoRoom request on a throwaway session (what a test inspects Janus with)."""
        async def run(call: Call) -> dict:
            session = (await call({"janus": "create"}))["data"]["id"]
            handle = (await call({"janus": "attach", "plugin": VIDEOROOM, "session_id": session}))["data"]["id"]
            reply = await call({"janus": "message", "session_id": session, "handle_id": handle, "body": body})
            return reply["plugindata"]["data"]

        return over_websocket(self.url, "janus-protocol", run, {"apisecret": self.secret})

    def handles(self) -> dict[int, list[dict]]:
        """Every Janus session and the VideoRoom state of each of its handles, from the admin API (admin=True)."""
        assert self.admin_url is not None and self.admin_secret is not None, "started without admin=True"

        async def run(call: Call) -> dict[int, list[dict]]:
            found = {}
            for session in (await call({"janus": "list_sessions"}))["sessions"]:
                listed = await call({"janus": "list_handles", "session_id": session})
                found[session] = []
                for handle in listed.get("handles", []):  # none: the session ended meanwhile
                    info = await call({"janus": "handle_info", "session_id": session, "handle_id": handle})
                    if "info" in info:
                        found[session].append(info["info"].get("plugin_specific", {}))
            return found

        return over_websocket(self.admin_url, "janus-admin-protocol", run, {"admin_secret": self.admin_secret})

    def stop(self) -> None:
        stop_process(self.process)

    def start(self, timeout: float = 20.0) -> None:
        """(Re)start Janus on the same port and secret, and wait until its API answers."""
        log_file = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            self.process = subprocess.Popen(self.argv, stdout=log_file, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=self.env)
        finally:
            log_file.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"janus exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            with contextlib.suppress(OSError, aiohttp.ClientError, TimeoutError, ValueError):
                info = over_websocket(self.url, "janus-protocol", lambda call: call({"janus": "info"}), {})
                if info.get("janus") == "server_info":
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"janus did not answer in {timeout}s:\n{self.log()[-3000:]}")
            time.sleep(0.2)


def over_websocket(url: str, protocol: str, run: Callable[[Call], Awaitable[Any]], extra: dict) -> Any:
    """Run `run(call)` over one WebSocket to Janus, synchronously: `call(message)` sends it (with `extra`, the
    secret) and returns its first reply that is not an ack. Safe to use inside a running event loop (a test's
    scenario): it runs on a thread of its own."""
    async def session() -> Any:
        async with aiohttp.ClientSession() as http, http.ws_connect(url, protocols=(protocol,)) as ws:
            async def call(message: dict) -> dict:
                transaction = secrets.token_hex(6)
                await ws.send_json({**message, **extra, "transaction": transaction})
                while True:
                    reply = await asyncio.wait_for(ws.receive_json(), 10)
                    if reply.get("transaction") == transaction and reply.get("janus") != "ack":
                        return reply

            return await run(call)

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, session()).result()


def janus_available() -> bool:
    return shutil.which("janus") is not None and namespaces_available()


def _set(text: str, key: str, value: str) -> str:
    """Set `key = value` in a jcfg text (the line must exist)."""
    changed, count = re.subn(rf"(?m)^(\s*{key}\s*=\s*)\S+", lambda m: m.group(1) + value, text)
    assert count == 1, f"{key} not found once in the config"
    return changed


@contextlib.contextmanager
def running_janus(tmp_dir: Path, admin: bool = False) -> Iterator[RunningJanus]:
    with network_namespace() as namespace:
        yield from _running_janus(tmp_dir, namespace, admin)


def _running_janus(tmp_dir: Path, namespace: Namespace, admin: bool) -> Iterator[RunningJanus]:
    config_dir = tmp_dir / "janus-config"
    shutil.copytree(CONFIG_DIR, config_dir, dirs_exist_ok=True, ignore=shutil.ignore_patterns("Dockerfile", "*.sh"))
    port = free_port()
    ws_config = config_dir / "janus.transport.websockets.jcfg"
    text = _set(ws_config.read_text(), "ws_port", str(port))
    admin_url = admin_secret = None
    if admin:  # tests only: on loopback, with a secret of its own
        admin_port, admin_secret = free_port(), secrets.token_hex(16)
        admin_url = f"ws://{namespace.inner_address}:{admin_port}"
        text = _set(text, "admin_ws", "true").replace(
            "admin: {", f'admin: {{\n\tadmin_ws_port = {admin_port}\n\tadmin_ws_ip = "{namespace.inner_address}"', 1)
        core = config_dir / "janus.jcfg"
        core.write_text(core.read_text().replace("general: {", f'general: {{\n\tadmin_secret = "{admin_secret}"', 1))
    ws_config.write_text(text)
    rtp_low = 20000 + secrets.randbelow(400) * 100  # a random 100-port slice, apart from other runs
    secret = secrets.token_hex(16)
    run_dir = tmp_dir / "janus-run"
    env = {**os.environ, "JANUS_API_SECRET": secret, "JANUS_CONFIG_DIR": str(config_dir),
           "JANUS_RUN_DIR": str(run_dir), "JANUS_API_IP": namespace.inner_address}
    argv = [*namespace.exec_prefix(), "sh", str(START_SCRIPT), "--rtp-port-range", f"{rtp_low}-{rtp_low + 99}"]
    janus = RunningJanus(f"ws://{namespace.inner_address}:{port}", secret, secrets.token_hex(16), config_dir, run_dir,
                         tmp_dir / f"janus-{port}.log", subprocess.Popen(["true"]), argv, env, admin_url,
                         admin_secret)
    janus.process.wait()
    janus.start()
    try:
        yield janus
    finally:
        janus.stop()
