"""Targets are immutable once prepared: a measured session whose driver shows no face must not write its
frame-id barcode into the shared gallery image, and a target switch must not keep showing the previous
target's last frame. A real server (warp: it needs a face, so faceless frames take the 'held' path)."""

from __future__ import annotations

import asyncio
import io
import urllib.request
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from loadtest.local_server import RunningServer, running_server
from loadtest.peer import PeerConfig, SyntheticPeer

FACELESS = [np.full((240, 320, 3), 90, np.uint8)] * 300  # 10 s of an empty grey room


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("targets"), "--generator", "warp", "--admission", "cap") as running:
        yield running


def target_crop(server: RunningServer, target_id: str) -> tuple[bytes, np.ndarray]:
    with urllib.request.urlopen(f"{server.url}/api/targets/{target_id}/image", timeout=30) as response:
        jpeg = response.read()
    return jpeg, np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"), np.float32)


def test_barcode_never_reaches_the_shared_target_image(server: RunningServer) -> None:
    before, crop = target_crop(server, "astronaut")

    async def scenario() -> SyntheticPeer:
        config = PeerConfig(url=server.url, target="astronaut", measure=True, width=320, height=240, keep_frames=60)
        async with SyntheticPeer(FACELESS, config) as peer:
            await asyncio.sleep(2.5)
        return peer

    peer = asyncio.run(scenario())
    assert len(peer.stats.kept_frames) > 20
    assert all(not s["face_found"] for s in peer.stats.statuses if s["type"] == "status")
    after, _ = target_crop(server, "astronaut")
    assert after == before, "the gallery image changed: a session's barcode was written into it"
    # The caller sees the target at rest (its own copy carries the barcode, the corner excluded here).
    _, frame = peer.stats.kept_frames[-1]
    assert np.abs(frame[64:].astype(np.float32) - crop[64:]).mean() < 12


def test_target_switch_does_not_show_the_previous_targets_last_frame(server: RunningServer,
                                                                      talking_face_frames) -> None:
    _, astronaut = target_crop(server, "astronaut")
    _, grace = target_crop(server, "grace_hopper")
    frames = list(talking_face_frames[:45]) + FACELESS  # a face for 1.5 s, then the caller walks away

    async def scenario() -> np.ndarray:
        config = PeerConfig(url=server.url, target="astronaut", measure=False, width=320, height=240,
                            keep_frames=10_000)
        async with SyntheticPeer(frames, config) as peer:
            await asyncio.sleep(3.0)  # holding astronaut's last rendered frame now
            status, _ = await peer.request("POST", "/target", json={"target": "grace_hopper"})
            assert status == 200
            await asyncio.sleep(1.5)
            return peer.stats.kept_frames[-1][1].astype(np.float32)

    shown = asyncio.run(scenario())
    to_grace, to_astronaut = np.abs(shown - grace).mean(), np.abs(shown - astronaut).mean()
    assert to_grace < 12 and to_grace < to_astronaut / 2, (to_grace, to_astronaut)
