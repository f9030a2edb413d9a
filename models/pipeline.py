"""The reenactment pipeline: the one interface the server and the offline CLI use.

CONTRACT (the server depends on exactly this; keep it stable):

    pipeline = ReenactmentPipeline(PipelineConfig(generator="warp", output_size=256))
    target = pipeline.prepare_target([rgb_photo, ...])   # raises NoFaceError; largest face used
    driver = pipeline.new_driver()                        # per-session mutable state
    pipeline.request_calibration(driver)                  # next frame with a face sets neutral
    results = pipeline.process([FrameJob(driver, target, rgb_frame), ...])  # batched, blocking

`process` is called from a worker thread (never the event loop) with frames from many
sessions at once; each result is an RGB uint8 (output_size, output_size, 3) image.
A driver frame without a face gives the session's last good output (or the target at rest)
with face_found=False; it never raises for that.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

GENERATORS = ("warp", "passthrough")


class NoFaceError(ValueError):
    """Raised by prepare_target when a photo has no detectable face."""


@dataclass(frozen=True)
class PipelineConfig:
    generator: str = "warp"
    output_size: int = 256
    detect_every: int = 10  # full face detection every N frames; tracked in between
    device: str = "cpu"


@dataclass
class TargetFace:
    """Target side, computed once per target choice (K photos for few-shot)."""

    images: list[np.ndarray]  # K aligned RGB crops, (output_size, output_size, 3) uint8
    landmarks: list[np.ndarray]  # K (68, 2) float32, in crop pixel coordinates
    extra: dict = field(default_factory=dict)  # generator-specific cache


@dataclass
class DriverState:
    """Per-session driver state: tracking, calibration, last good output."""

    tracker: object | None = None
    neutral: np.ndarray | None = None  # (68, 2) driver landmarks at rest
    calibrate_next: bool = True  # the first face seen becomes the neutral face
    last_output: np.ndarray | None = None


@dataclass
class FrameJob:
    driver: DriverState
    target: TargetFace
    frame: np.ndarray  # RGB uint8 driver frame, any size


@dataclass
class FrameResult:
    image: np.ndarray  # RGB uint8 (output_size, output_size, 3)
    face_found: bool
    stage_seconds: dict[str, float]  # wall time per stage for this batch, e.g. {"landmarks": .004}
