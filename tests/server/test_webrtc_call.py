"""A real call over loopback: an aiortc peer streams a real talking-face video to the server (default
generator, mesh) and checks the avatar stream it gets back."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator

import cv2
import numpy as np
import pytest

from evaluation.identity import cosine_similarity, face_embedding
from loadtest.local_server import RunningServer, running_server
from loadtest.peer import PeerConfig, SyntheticPeer
from models.assets import gallery
from models.face_measures import mouth_opening
from models.landmarks import detect_landmarks

FPS = 30.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("call")) as running:  # the default generator
        yield running


@pytest.fixture(scope="module")
def call(server: RunningServer, talking_face_clip: list[np.ndarray]) -> SyntheticPeer:
    """The whole clip once through a real call (the mouth moves most in its second half)."""

    async def run() -> SyntheticPeer:
        config = PeerConfig(url=server.url, target="astronaut", output_size=256, fps=FPS,
                            keep_frames=len(talking_face_clip))
        async with SyntheticPeer(talking_face_clip, config) as peer:
            await asyncio.sleep(len(talking_face_clip) / FPS + 0.5)
        return peer

    return asyncio.run(run())


def test_avatar_frames_arrive_at_requested_size_with_driver_pts(call: SyntheticPeer) -> None:
    stats = call.stats
    assert stats.errors == []
    # A broken pipeline returns nothing or stalls; an overloaded machine drops frames (the batcher keeps the
    # newest), so the call is judged by avatar frames arriving all through it, not by a share of the sent ones.
    assert len(stats.received) >= 30
    arrivals = [r.arrived for r in stats.received]
    assert _longest_gap_s(arrivals) < 1.5
    assert max(arrivals) > max(stats.sent_at.values()) - 1.5  # still arriving at the end of the call
    assert {(r.width, r.height) for r in stats.received} == {(256, 256)}
    matched = [r for r in stats.received if r.frame_id in stats.sent_pts]
    assert len(matched) >= 0.9 * len(stats.received)
    # The receiver re-bases pts to its first frame, so sent and received pts differ by one constant.
    offsets = [r.pts - stats.sent_pts[r.frame_id] for r in matched]
    assert max(offsets) - min(offsets) <= 10  # 90 kHz ticks: rounding only
    latencies = stats.latencies_ms()
    assert latencies and min(latencies) > 0


def _longest_gap_s(arrivals: list[float]) -> float:
    ordered = sorted(arrivals)
    return max(b - a for a, b in itertools.pairwise(ordered))


def _driver_frame(frames: list[np.ndarray], frame_id: int) -> np.ndarray:
    return frames[frame_id % len(frames)]


def _identified(call: SyntheticPeer) -> list[tuple[int, np.ndarray]]:
    """Kept avatar frames whose frame-id barcode decoded. Under load the codec can blur a tag beyond reading
    (read_tag then says None rather than guess); such a frame cannot be paired with its driver frame."""
    return [(frame_id, image) for frame_id, image in call.stats.kept_frames if frame_id is not None]


def _spread(frames: list[tuple[int, np.ndarray]], count: int) -> list[tuple[int, np.ndarray]]:
    """`count` frames evenly over the clip, however many arrived: a loaded machine drops frames (the batcher
    keeps the newest), which must not change how many a quality check looks at."""
    if len(frames) <= count:
        return frames
    return [frames[i] for i in np.linspace(0, len(frames) - 1, count).astype(int)]


def test_avatar_keeps_target_identity(call: SyntheticPeer, talking_face_clip: list[np.ndarray]) -> None:
    target_photo = cv2.cvtColor(cv2.imread(str(gallery()[0].path)), cv2.COLOR_BGR2RGB)
    target_embedding = face_embedding(target_photo)
    assert target_embedding is not None
    closer_to_target = checked = faceless = 0
    for frame_id, image in _spread(_identified(call)[10:], 12):
        output = face_embedding(image)
        driver = face_embedding(_driver_frame(talking_face_clip, frame_id))
        if output is None:
            faceless += 1  # heavy distortion when the driver's hand covers her face
            continue
        if driver is None:
            continue
        checked += 1
        closer_to_target += cosine_similarity(output, target_embedding) > cosine_similarity(output, driver)
    assert faceless <= 2, "the avatar frames should show a face"
    assert checked >= 8
    assert closer_to_target == checked


def test_avatar_mouth_follows_driver(call: SyntheticPeer, talking_face_clip: list[np.ndarray]) -> None:
    driver_mouth, avatar_mouth = [], []
    for frame_id, image in _spread(_identified(call), 150):
        avatar = detect_landmarks(image)
        driver = detect_landmarks(_driver_frame(talking_face_clip, frame_id))
        if avatar is None or driver is None:
            continue
        avatar_mouth.append(mouth_opening(avatar))
        driver_mouth.append(mouth_opening(driver))
    assert len(avatar_mouth) >= 60
    assert np.std(driver_mouth) > 0.01  # the clip really has mouth motion to follow
    correlation = np.corrcoef(driver_mouth, avatar_mouth)[0, 1]
    assert correlation > 0.5, f"avatar mouth does not follow the driver (r={correlation:.2f})"
