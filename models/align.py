"""Aligned face crops: the target photo is cut to a square with the face at a fixed scale and upright."""

from __future__ import annotations

import cv2
import numpy as np

from models import geometry


def crop_matrix(landmarks: np.ndarray, size: int) -> np.ndarray:
    """2x3 similarity mapping photo pixels to an upright crop of `size` px around the face."""
    left_eye, right_eye = landmarks[36:42].mean(axis=0), landmarks[42:48].mean(axis=0)
    mouth = landmarks[48:68].mean(axis=0)
    eyes_centre = (left_eye + right_eye) / 2
    eye_vector = right_eye - left_eye
    angle = np.arctan2(eye_vector[1], eye_vector[0])
    # Face scale from both the eye distance and the eye-to-mouth distance (robust to a turned head).
    scale_px = max(np.linalg.norm(eye_vector), 0.9 * np.linalg.norm(mouth - eyes_centre))
    zoom = size * 0.22 / scale_px  # eye distance ~22% of the crop: room for head motion and hair
    centre = eyes_centre * 0.55 + mouth * 0.45  # a bit above the nose tip: forehead and chin both fit
    cos, sin = np.cos(-angle) * zoom, np.sin(-angle) * zoom
    matrix = np.array([[cos, -sin, 0.0], [sin, cos, 0.0]])
    matrix[:, 2] = np.array([size / 2, size * 0.52]) - matrix[:, :2] @ centre
    return matrix


OUTSIDE_BLUR = 1 / 16  # of the crop size: how defocused the part of the crop beyond the photo's edge is


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The aligned crop and its landmarks in crop pixels. Where the crop reaches beyond the photo (a tight portrait,
    a face near the edge), the photo's edge is continued defocused: repeated sharp, its edge pixels drew long
    streaks beside the head and under the neck in every frame (mirrored, a small photo's face came back as ghosts
    around it)."""
    matrix = crop_matrix(landmarks, size)
    flags = cv2.INTER_AREA if matrix[0, 0] < 1 else cv2.INTER_LINEAR
    crop = cv2.warpAffine(image, matrix, (size, size), flags=flags, borderMode=cv2.BORDER_REPLICATE)
    inside = cv2.warpAffine(np.ones(image.shape[:2], np.float32), matrix, (size, size), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if inside.min() < 1.0:
        sigma = OUTSIDE_BLUR * size
        defocused = cv2.GaussianBlur(crop, (0, 0), sigma)
        # Soft towards the edge, sharp inside: the photo's own pixels stay as they are.
        weight = np.clip(1.0 - cv2.GaussianBlur(inside, (0, 0), sigma / 2) * inside, 0.0, 1.0)[..., None]
        crop = np.round(crop * (1.0 - weight) + defocused * weight).astype(np.uint8)
    return crop, geometry.apply(matrix, landmarks).astype(np.float32)
