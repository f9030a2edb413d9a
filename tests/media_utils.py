"""Test media helpers: read video files into numpy, write Y4M files that Chromium's fake camera plays."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import av
import cv2
import numpy as np


def write_y4m(frames: Iterable[np.ndarray], path: Path, fps: int = 30) -> Path:
    """RGB frames -> YUV4MPEG2 4:2:0 planar (what Chromium's --use-file-for-fake-video-capture reads).

    Chromium loops the file, so a few seconds are enough. Width and height must be even (4:2:0).
    """
    frames = list(frames)
    if not frames:
        raise ValueError("write_y4m needs at least one frame")
    height, width = frames[0].shape[:2]
    if width % 2 or height % 2:
        raise ValueError(f"4:2:0 needs even dimensions, got {width}x{height}")
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for index, frame in enumerate(frames):
            if frame.shape != (height, width, 3):
                raise ValueError(f"frame {index} is {frame.shape}, expected {(height, width, 3)}")
            out.write(b"FRAME\n")
            # OpenCV's I420 is planar Y, then U, then V at quarter size: exactly a y4m 420 frame body.
            out.write(cv2.cvtColor(np.ascontiguousarray(frame, dtype=np.uint8), cv2.COLOR_RGB2YUV_I420).tobytes())
    return path


def read_video_frames(path: Path | str, max_frames: int | None = None,
                      size: tuple[int, int] | None = None) -> list[np.ndarray]:
    """Decode up to `max_frames` frames of a video file (mp4, mov, y4m, ...) as RGB uint8 arrays.

    `size` is (width, height) to resize every frame to, as cv2 takes it.
    """
    frames: list[np.ndarray] = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if max_frames is not None and len(frames) >= max_frames:
                break
            rgb = frame.to_ndarray(format="rgb24")
            if size is not None and (rgb.shape[1], rgb.shape[0]) != size:
                rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            frames.append(rgb)
    return frames
