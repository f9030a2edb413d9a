"""Landmark engines: what runs BlazeFace, FaceMesh and the eye network for the tracker (models/facemesh/tracker.py).

The tracker decides which frames to detect in, where each face's ROI is and what to keep; an engine only cuts
crops and runs the networks, with numpy arrays at its boundary (a few numbers per face). Two engines:

- torch (runtimes `torch` and `onnx`): the torch port, every face of the batch in one crop call and one network
  call, on any device: the batched GPU path, and the reference the others are tested against;
- litert (runtime `litert`): MediaPipe's .tflite files run by LiteRT with XNNPACK (MediaPipe's own engine) on the
  CPU, one face at a time (LiteRT runs one sample a call), each crop cut straight from the uint8 frame with
  cv2.warpAffine. The fastest measured CPU path (docs/performance.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from models.facemesh.detection import DetectionConfig
from models.facemesh.face_rois import FaceRois
from models.facemesh.networks import RuntimeConfig


@dataclass
class FaceCandidates:
    """Detections in W frames, frame pixels; `valid` masks the padded slots (fewer faces than max_faces)."""

    boxes: np.ndarray  # (W, K, 4) left, top, right, bottom
    keypoints: np.ndarray  # (W, K, 6, 2) x, y
    valid: np.ndarray  # (W, K) bool


class LandmarkEngine(Protocol):
    def load(self, frames: list[np.ndarray]) -> list:
        """The batch's RGB uint8 frames as this engine reads them (device tensors, or the arrays themselves)."""

    def detect(self, frames: list, which: list[int]) -> FaceCandidates:
        """BlazeFace on frames[i] for i in `which`."""

    def mesh(self, frames: list, frame_index: list[int], rois: FaceRois) -> tuple[np.ndarray, np.ndarray]:
        """FaceMesh on ROI i of frames[frame_index[i]] -> points (N, 468, 3) in frame pixels, presence logits (N,)."""

    def eyes(self, frames: list, frame_index: list[int], rois: FaceRois, mirrored: list[bool]) -> np.ndarray:
        """The eye network on ROI i of frames[frame_index[i]] (left-right flipped where `mirrored`) -> 71 eye
        contour/brow points then 5 iris points, (N, 76, 3) in frame pixels."""


def landmark_engine(runtime: RuntimeConfig, detection: DetectionConfig, refine_eyes: bool) -> LandmarkEngine:
    if runtime.runtime == "litert":
        from models.facemesh.litert_engine import LiteRtEngine

        if runtime.device != "cpu":
            raise ValueError(f"the litert runtime runs on the CPU only, not on {runtime.device!r}: use torch there")
        return LiteRtEngine(detection, refine_eyes, runtime.cpu_threads)
    from models.facemesh.torch_engine import TorchEngine

    return TorchEngine(runtime, detection, refine_eyes)
