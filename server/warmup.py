"""Start-up warm-up: load every network and measure the model's cost per frame before the first caller.

Networks built lazily would make the first batch of the first call take seconds; and admission needs a
cost per frame before any session has measured one."""

from __future__ import annotations

import time

import av
import cv2
import numpy as np

from models.pipeline import FrameJob, ReenactmentPipeline, TargetFace

WARMUP_FRAMES = 6  # the first ones build the networks; the cost is the median of the rest
DRIVER_SIZE = (640, 480)  # a typical webcam frame


def warm_up(pipeline: ReenactmentPipeline, target: TargetFace) -> float:
    """Seconds per frame of the batcher's work at batch 1 (yuv -> rgb, the model, rgb -> yuv); runs in the
    model thread. The target's own photo is the driver, so a face is found and every stage runs."""
    photo = np.ascontiguousarray(target.images[0])
    frame = av.VideoFrame.from_ndarray(cv2.resize(photo, DRIVER_SIZE), format="rgb24").reformat(format="yuv420p")
    driver = pipeline.new_driver()
    times = []
    for _ in range(WARMUP_FRAMES):
        start = time.perf_counter()
        result = pipeline.process([FrameJob(driver, target, frame.to_ndarray(format="rgb24"))])[0]
        av.VideoFrame.from_ndarray(np.ascontiguousarray(result.image), format="rgb24").reformat(format="yuv420p")
        times.append(time.perf_counter() - start)
    return float(np.median(times[2:]))
