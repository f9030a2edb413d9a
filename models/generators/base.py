"""The generator interface every generator implements (warp baseline, passthrough, neural ones)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from models.config import GeneratorSettings  # declared with the other pipeline options


@dataclass
class GenerateRequest:
    """One frame to render: the target (K aligned images + landmarks) driven to `driven` landmarks."""

    images: list[np.ndarray]
    landmarks: list[np.ndarray]
    cache: dict  # what prepare() returned for this target
    driven: np.ndarray | None  # (68, 2) in output pixels; None for generators that need no landmarks
    driver_frame: np.ndarray  # the raw driver frame (only passthrough looks at it)
    driver_mesh: np.ndarray | None = None  # (468, 3) the driver's smoothed FaceMesh, frame pixels (mesh landmarks)
    neutral_mesh: np.ndarray | None = None  # (468, 3) the driver's calibrated neutral FaceMesh
    open_eyes: np.ndarray | None = None  # (2,) the driver's eye openness with eyes open (None: the neutral's)
    mouth_gain: float = 1.0  # the caller's mouth-range gain (models/mesh3d/caller_range.py)
    mouth_closed: float | None = None  # the caller's closed mouth from their own range (None: not seen enough yet)


EvaluationMaps = tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]  # area, map, exempt from tears


class Generator(ABC):
    needs_landmarks: bool = True
    needs_mesh: bool = False  # prepare() also gets each target photo's 468-point mesh; requests carry meshes

    def __init__(self, settings: GeneratorSettings) -> None:
        self.settings = settings
        self.output_size = settings.output_size

    def prepare(self, images: list[np.ndarray], landmarks: list[np.ndarray]) -> dict:
        """Per-target work done once when a target is chosen; the result is passed back on every frame."""
        return {}

    @abstractmethod
    def generate(self, requests: list[GenerateRequest]) -> list[np.ndarray]:
        """RGB uint8 (output_size, output_size, 3) images, one per request (a batch across sessions)."""

    def area_ratio_maps(self, requests: list[GenerateRequest]) -> list[np.ndarray | None]:
        """For evaluation: per output pixel, the local area ratio (Jacobian determinant) of the map that
        samples the target photo, (output_size, output_size) float32; <= 0 is a fold or tear. None for a
        generator whose output is not a geometric resampling of the target (passthrough, neural)."""
        return [None] * len(requests)

    def evaluation_maps(self, requests: list[GenerateRequest]) -> list[EvaluationMaps]:
        """For evaluation, per request in one pass: the area ratios (as area_ratio_maps); the sampling map, per
        output pixel the photo point it samples, (output_size, output_size, 2) float32 x, y in target-crop pixels
        (None for a generator that does not resample the target photo); and the (output_size, output_size) bool
        pixels the tear measure does not judge (painted over rather than sampled, like an open mouth's inside, or
        on a line where lids or lips meet; None: all are judged)."""
        return [(area, None, None) for area in self.area_ratio_maps(requests)]
