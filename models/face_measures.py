"""Expression measures on 68 landmarks: mouth opening and eye openness (the generators paint by them;
evaluation compares them between driver and avatar)."""

from __future__ import annotations

import numpy as np

from models.landmarks import face_size

LEFT_EYE, RIGHT_EYE = np.arange(36, 42), np.arange(42, 48)


def mouth_opening(landmarks: np.ndarray) -> float:
    """Inner-lip gap normalised by the eye distance (0 = closed)."""
    gap = np.mean([np.linalg.norm(landmarks[a] - landmarks[b]) for a, b in ((61, 67), (62, 66), (63, 65))])
    return float(gap / max(face_size(landmarks), 1e-6))


def eye_openness(landmarks: np.ndarray, eye: np.ndarray) -> float:
    """Eye height / width of one eye (dlib's 6 points per eye)."""
    points = landmarks[eye]
    vertical = np.linalg.norm(points[1] - points[5]) + np.linalg.norm(points[2] - points[4])
    return float(vertical / (2 * max(np.linalg.norm(points[0] - points[3]), 1e-6)))


def eye_aspect_ratio(landmarks: np.ndarray) -> float:
    """Mean eye openness of both eyes (height / width)."""
    return (eye_openness(landmarks, LEFT_EYE) + eye_openness(landmarks, RIGHT_EYE)) / 2
