"""Test media helpers: write frames as a Y4M file that Chromium's fake camera plays."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np


def write_y4m(frames: Iterable[np.ndarray], path: Path, fps: int = 30) -> Path:
    """RGB frames -> YUV4MPEG2 4:2:0 (what --use-file-for-fake-video-capture reads)."""
    frames = list(frames)
    height, width = frames[0].shape[:2]
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            out.write(b"FRAME\n")
            out.write(cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path
