"""The abuse suite (issue 19): what one client does must not lock the service for everyone.

Table-driven: each case names the server flags it needs and an async scenario run against its own real server
(passthrough generator) with real aiortc callers from loadtest.peer. Add a case to ABUSE_CASES to extend it.
All traffic stays on 127.0.0.0/8: a second "client" is a caller whose HTTP requests come from 127.0.0.2.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from loadtest.local_server import RunningServer, running_server
from loadtest.peer import PeerConfig, RejectedError, SyntheticPeer
from rtc import messages

Scenario = Callable[[RunningServer, list[np.ndarray]], Awaitable[None]]
OTHER_CLIENT = "127.0.0.2"


@dataclass(frozen=True)
class AbuseCase:
    name: str
    flags: tuple[str, ...]
    scenario: Scenario


def caller(server: RunningServer, **overrides) -> PeerConfig:
    return PeerConfig(url=server.url, measure=False, width=320, height=240, **overrides)


async def wait_until(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


def sessions(server: RunningServer) -> int:
    return server.get_json("/healthz")["sessions"]


def new_room(server: RunningServer) -> str:
    request = urllib.request.Request(server.url + "/api/rooms", data=b"{}", method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["room_id"]


async def refused(frames: list[np.ndarray], config: PeerConfig) -> RejectedError:
    with pytest.raises(RejectedError) as error:
        await SyntheticPeer(frames, config).connect()
    return error.value


def assert_too_many(error: RejectedError, words: str) -> None:
    assert error.status == 429, error
    assert words in error.message, error.message
    assert error.retry_after is not None and int(error.retry_after) >= 1


async def silent_pinging_session_is_closed_and_the_next_caller_admitted(
        server: RunningServer, frames: list[np.ndarray]) -> None:
    """The hog offers a camera, never sends a frame and pings once a second; it holds the only place
    (--max-sessions 1) only until --video-idle-timeout-s (3 s)."""
    hog = SyntheticPeer(frames[:10], caller(server, send_video=False, ping_every_s=1.0))
    await hog.connect()
    opened = time.monotonic()
    try:
        busy = await refused(frames[:10], caller(server))
        assert busy.status == 503 and "server full" in busy.message  # the hog holds the place
        assert await wait_until(lambda: sessions(server) == 0, 15), "the silent, pinging session was never closed"
        held = time.monotonic() - opened
        assert 2.5 < held < 7, f"closed after {held:.1f} s with --video-idle-timeout-s 3"
        assert any(m.get("type") == messages.PONG for m in hog.stats.statuses)  # its pings were answered

        def closed() -> list[dict]:
            return [m for m in hog.stats.statuses if m.get("type") == messages.CLOSED]

        assert await wait_until(lambda: bool(closed()), 3)  # sent as the session closed, may still be on its way
        assert closed()[0]["reason"] == "no video from your camera for 3 s", closed()
    finally:
        await hog.close(hang_up=False)
    async with SyntheticPeer(frames[:30], caller(server)) as next_caller:  # the place is free again
        assert await wait_until(lambda: len(next_caller.stats.received) > 10, 10)


async def one_client_holds_at_most_its_sessions(server: RunningServer, frames: list[np.ndarray]) -> None:
    """--max-sessions-per-client 2: a call and a room join are that client's two; a third is 429 (as a call and as
    a join) while another address still gets in; hanging up gives the place back."""
    room = new_room(server)
    first = SyntheticPeer(frames[:10], caller(server))
    await first.connect()
    joined = SyntheticPeer(frames[:10], caller(server, room=room))
    await joined.connect()
    try:
        assert_too_many(await refused(frames[:10], caller(server)), "2 calls open")
        assert_too_many(await refused(frames[:10], caller(server, room=room)), "2 calls open")
        async with SyntheticPeer(frames[:10], caller(server, source_address=OTHER_CLIENT)):
            assert sessions(server) == 3
        await first.close()
        async with SyntheticPeer(frames[:10], caller(server)):  # its place came back
            assert sessions(server) == 2
    finally:
        await first.close()
        await joined.close()


async def one_client_starts_at_most_m_calls_a_minute(server: RunningServer, frames: list[np.ndarray]) -> None:
    """--max-offers-per-minute 3: three calls (one a room join) opened and hung up, then a fourth is 429 with how
    long to wait, also as a room join; another address is not affected."""
    room = new_room(server)
    for config in (caller(server), caller(server, room=room), caller(server)):
        async with SyntheticPeer(frames[:10], config):
            pass
    too_many = await refused(frames[:10], caller(server))
    assert_too_many(too_many, "too many calls")
    assert 1 <= int(too_many.retry_after or 0) <= 60
    # The room closed when its one participant left: a new one.
    assert_too_many(await refused(frames[:10], caller(server, room=new_room(server))), "too many calls")
    async with SyntheticPeer(frames[:10], caller(server, source_address=OTHER_CLIENT)):
        assert sessions(server) == 1


async def a_10_fps_camera_is_charged_10_fps_not_the_full_30(server: RunningServer, frames: list[np.ndarray]) -> None:
    """Admission charges a running session its measured input rate (after a 2 s window), not --target-fps."""
    async with SyntheticPeer(frames[:30], caller(server, fps=10.0)) as slow:
        assert server.get_json("/healthz")["admission"]["charged_fps"] == 30.0  # just answered: not measured yet
        assert await wait_until(lambda: len(slow.stats.received) > 5, 10)
        await asyncio.sleep(3.0)  # more than the 2 s measuring window since the first frame
        charged = server.get_json("/healthz")["admission"]["charged_fps"]
        assert 7.0 <= charged <= 13.0, f"a 10 fps camera charged {charged} fps"


ABUSE_CASES = [
    AbuseCase("silent_pinging_session_is_closed_and_the_next_caller_admitted",
              ("--admission", "cap", "--max-sessions", "1", "--video-idle-timeout-s", "3"),
              silent_pinging_session_is_closed_and_the_next_caller_admitted),
    AbuseCase("one_client_holds_at_most_its_sessions",
              ("--admission", "cap", "--max-sessions-per-client", "2", "--max-offers-per-minute", "100"),
              one_client_holds_at_most_its_sessions),
    AbuseCase("one_client_starts_at_most_m_calls_a_minute",
              ("--admission", "cap", "--max-offers-per-minute", "3"),
              one_client_starts_at_most_m_calls_a_minute),
    AbuseCase("a_10_fps_camera_is_charged_10_fps_not_the_full_30", (),
              a_10_fps_camera_is_charged_10_fps_not_the_full_30),
]


@pytest.mark.parametrize("case", ABUSE_CASES, ids=lambda case: case.name)
def test_abuse(case: AbuseCase, tmp_path: Path, talking_face_frames: list[np.ndarray]) -> None:
    with running_server(tmp_path, "--generator", "passthrough", *case.flags) as server:
        asyncio.run(case.scenario(server, talking_face_frames))
        assert asyncio.run(wait_until(lambda: sessions(server) == 0, 10)), "a session was left open"
