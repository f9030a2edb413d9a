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
    # Plausibility limits relative to the target's own face (its photo cannot show more than this):
    max_eye_opening: float = 1.25  # eye height vs the target's at rest: wider stretches the eye texture
    max_mouth_width: float = 1.2  # mouth corner distance vs the target's at rest


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


def expression_delta(landmarks: np.ndarray, neutral: np.ndarray) -> np.ndarray:
    """(68, 2) offsets from the neutral face, in its eye-aligned frame, divided by its width and height."""
    _, rotation = _eye_frame(neutral)
    return ((landmarks - neutral) @ rotation.T) / _extent(neutral)


def canonical(landmarks: np.ndarray) -> np.ndarray:
    """Landmarks in their own eye-aligned frame, divided by the face's width and height."""
    origin, rotation = _eye_frame(landmarks)
    return ((landmarks - origin) @ rotation.T) / _extent(landmarks)


class LandmarkTransformer:
    """v0: the raw geometric expression delta (subclasses disentangle it, see models/marionette)."""

    def __init__(self, config: TransformerConfig) -> None:
        self.config = config

    def expression(self, driver_in_neutral_pose: np.ndarray, neutral: np.ndarray) -> np.ndarray:
        return expression_delta(driver_in_neutral_pose, neutral)

    def transform(self, driver: np.ndarray, neutral: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Target landmarks (68, 2) showing the driver's current expression and head motion."""
        # Head motion: neutral -> current, from the points expression hardly moves.
        pose = geometry.similarity_transform(neutral[STABLE_POINTS], driver[STABLE_POINTS])
        driver_in_neutral_pose = geometry.apply(geometry.invert(pose), driver)
        # The expression in face-size units (eye-aligned frame), rescaled per axis to the target's face.
        local = self.expression(driver_in_neutral_pose, neutral) * _extent(target)
        _, target_rotation = _eye_frame(target)
        driven = limit_expression(target + local @ target_rotation, target, self.config)

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


EYES = ((36, 39, [37, 38, 40, 41]), (42, 45, [43, 44, 46, 47]))  # corners, then upper and lower lid points


def _lid_offsets(points: np.ndarray, inner: int, outer: int, lids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Signed distances of the lid points from the eye's corner line, and that line's unit normal."""
    axis = points[outer] - points[inner]
    normal = np.array([-axis[1], axis[0]]) / max(float(np.linalg.norm(axis)), 1e-6)
    return (points[lids] - points[inner]) @ normal, normal


def limit_expression(driven: np.ndarray, target: np.ndarray, config: TransformerConfig) -> np.ndarray:
    """Keep eyes and mouth within what the target's photo can plausibly show (closing is never limited)."""
    driven = driven.copy()
    for inner, outer, lids in EYES:
        offsets, normal = _lid_offsets(driven, inner, outer, lids)
        rest, _ = _lid_offsets(target, inner, outer, lids)
        height = offsets[2:].mean() - offsets[:2].mean()
        limit = config.max_eye_opening * (rest[2:].mean() - rest[:2].mean())
        if height > limit > 0:  # shrink the lids towards their middle line
            middle = (offsets[2:].mean() + offsets[:2].mean()) / 2
            driven[lids] -= np.outer((offsets - middle) * (1 - limit / height), normal)
    mouth = np.arange(48, 68)
    width, rest_width = (float(np.linalg.norm(p[54] - p[48])) for p in (driven, target))
    if width > config.max_mouth_width * rest_width > 0:  # narrow the mouth about its centre
        axis = (driven[54] - driven[48]) / width
        along = (driven[mouth] - driven[mouth].mean(axis=0)) @ axis
        driven[mouth] -= np.outer(along * (1 - config.max_mouth_width * rest_width / width), axis)
    return driven
