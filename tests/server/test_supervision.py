"""The model loop is supervised: a killed batcher task comes back and /healthz says so; a stuck model turns
/healthz to 503. The real app in this process (aiohttp's test server), a real aiortc caller."""

from __future__ import annotations

import asyncio
import time

import aiohttp
from aiohttp.test_utils import TestServer

from loadtest.peer import PeerConfig, SyntheticPeer
from server.app import EXECUTOR, SUPERVISOR, build_app
from server.config import ServerConfig


async def _health(http: aiohttp.ClientSession, url: str) -> tuple[int, dict]:
    async with http.get(url + "/healthz") as response:
        return response.status, await response.json()


def test_killed_batcher_is_restarted_and_a_stuck_model_fails_the_health_check(talking_face_frames) -> None:
    async def scenario() -> None:
        app = build_app(ServerConfig(generator="passthrough", admission="cap", stuck_after_s=1.0))
        async with TestServer(app, host="127.0.0.1") as server, aiohttp.ClientSession() as http:
            url = str(server.make_url("")).rstrip("/")
            async with SyntheticPeer(talking_face_frames[:30], PeerConfig(url=url, measure=False)) as peer:
                await asyncio.sleep(1.0)
                app[SUPERVISOR].task("frame-batcher").cancel()  # killed from outside
                await asyncio.sleep(1.0)
                status, health = await _health(http, url)
                assert status == 200 and health["status"] == "ok"
                assert health["tasks"]["frame-batcher"] == {"running": True, "restarts": 1}
                received = len(peer.stats.received)
                await asyncio.sleep(1.0)
                assert len(peer.stats.received) > received + 10  # video flows again after the restart
                assert health["last_batch_age_s"] is not None and health["last_batch_age_s"] < 1.0

                # A model call that never returns (here: the model thread blocked for 3 s) is "stuck".
                app[EXECUTOR].submit(time.sleep, 3.0)
                await asyncio.sleep(2.0)
                status, health = await _health(http, url)
                assert status == 503 and health["status"] == "stuck"
                await asyncio.sleep(2.0)
                status, health = await _health(http, url)
                assert status == 200 and health["status"] == "ok"

    asyncio.run(scenario())
