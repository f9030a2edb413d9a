"""Training augmentation: one random look per self-reenactment sample, the same on all its frames.

With few identities (this repository's own run has one), the generator can memorise the training
face instead of taking appearance from the target frames. Re-colouring a sample (hue, saturation,
brightness, contrast) makes each sample a new-looking person whose appearance is only in its target
frames; a horizontal flip (landmarks mirrored and re-ordered) doubles the poses. The transform is
shared by the K target frames and the driver frame, so the driver frame stays the ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from models.facemesh.mapping import IBUG_MIRROR


@dataclass(frozen=True)
class AugmentConfig:
    flip: float = 0.5  # probability of a horizontal flip
    hue_degrees: float = 20.0  # uniform shift in +-degrees
    saturation: tuple[float, float] = (0.7, 1.3)
    brightness: tuple[float, float] = (0.75, 1.25)
    contrast: tuple[float, float] = (0.75, 1.25)


def augment_sample(frames: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator,
                   config: AugmentConfig = AugmentConfig()) -> tuple[np.ndarray, np.ndarray]:
    """frames (F, H, W, 3) RGB uint8 and landmarks (F, 68, 2) of one sample -> both transformed alike."""
    if rng.random() < config.flip:
        width = frames.shape[2]
        frames = frames[:, :, ::-1]
        landmarks = landmarks[:, list(IBUG_MIRROR)] * np.array([-1, 1], np.float32) + np.array([width - 1, 0],
                                                                                                np.float32)
    hue = rng.uniform(-config.hue_degrees, config.hue_degrees) / 2  # OpenCV's 8-bit hue runs 0..180
    saturation, brightness, contrast = (rng.uniform(*r) for r in (config.saturation, config.brightness,
                                                                  config.contrast))
    out = np.empty_like(frames)
    for index, frame in enumerate(frames):
        hsv = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2HSV).astype(np.float32)
        hsv[..., 0] = (hsv[..., 0] + hue) % 180
        hsv[..., 1] = np.clip(hsv[..., 1] * saturation, 0, 255)
        rgb = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
        out[index] = np.clip(((rgb - 128) * contrast + 128) * brightness, 0, 255)  # contrast about mid-grey
    return out, landmarks.astype(np.float32)
