"""Landmark transformer v0: the driver's motion relative to their neutral face, on the target's geometry.

The driver's landmarks are brought back into the pose of their neutral face (similarity transform
on stable points); what differs from neutral there is expression. That delta is rescaled from the
driver's face proportions to the target's (per axis, in an eye-aligned frame, so a wide driver face
does not widen the target), added to the target's own landmarks, and the driver's head motion
(rotation, scale, translation relative to neutral) is applied on top about the target's face centre.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models import geometry
from models.geometry import STABLE_POINTS


@dataclass(frozen=True)
class TransformerConfig:
    max_translation: float = 0.15  # of the output size: the face stays in frame
    scale_range: tuple[float, float] = (0.8, 1.25)
    output_size: int = 256


def _eye_frame(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Origin and rotation of a frame whose x axis runs from the left to the right eye centre."""
    left, right = landmarks[36:42].mean(axis=0), landmarks[42:48].mean(axis=0)
    x_axis = (right - left) / max(np.linalg.norm(right - left), 1e-6)
    rotation = np.array([x_axis, [-x_axis[1], x_axis[0]]])  # rows: x axis, y axis
    return (left + right) / 2, rotation


def _extent(landmarks: np.ndarray) -> np.ndarray:
    """Face width and height in its own eye-aligned frame."""
    origin, rotation = _eye_frame(landmarks)
    local = (landmarks - origin) @ rotation.T
    return np.maximum(local.max(axis=0) - local.min(axis=0), 1e-3)


class LandmarkTransformer:
    def __init__(self, config: TransformerConfig) -> None:
        self.config = config

    def transform(self, driver: np.ndarray, neutral: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Target landmarks (68, 2) showing the driver's current expression and head motion."""
        # Head motion: neutral -> current, from the points expression hardly moves.
        pose = geometry.similarity_transform(neutral[STABLE_POINTS], driver[STABLE_POINTS])
        driver_in_neutral_pose = geometry.apply(geometry.invert(pose), driver)
        expression = driver_in_neutral_pose - neutral

        # Express the delta in the driver's eye frame, rescale per axis to the target, rotate into its frame.
        _, driver_rotation = _eye_frame(neutral)
        _, target_rotation = _eye_frame(target)
        ratio = _extent(target) / _extent(neutral)
        local = (expression @ driver_rotation.T) * ratio
        driven = target + local @ target_rotation

        scale, angle = geometry.scale_and_angle(pose)
        scale = float(np.clip(scale, *self.config.scale_range))
        neutral_centre = neutral[STABLE_POINTS].mean(axis=0)
        shift = geometry.apply(pose, neutral_centre[None])[0] - neutral_centre
        # Translation in target pixels: driver pixels scaled by the ratio of face sizes.
        shift = shift * (_extent(target)[0] / _extent(neutral)[0])
        limit = self.config.max_translation * self.config.output_size
        shift = np.clip(shift, -limit, limit)
        centre = target[STABLE_POINTS].mean(axis=0)
        cos, sin = np.cos(angle), np.sin(angle)
        rotation = np.array([[cos, -sin], [sin, cos]]) * scale
        return ((driven - centre) @ rotation.T + centre + shift).astype(np.float32)
