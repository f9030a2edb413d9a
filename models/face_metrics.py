"""Face measures used by tests and evaluation: identity embedding, mouth opening, eye openness."""

from __future__ import annotations

import functools
import threading

import dlib
import numpy as np

from models.assets import FACE_EMBEDDING_RESNET, SHAPE_PREDICTOR_5, dlib_model_path
from models.landmarks import detect_face_boxes, face_size, to_gray

LEFT_EYE, RIGHT_EYE = np.arange(36, 42), np.arange(42, 48)

_lock = threading.Lock()


@functools.cache
def _embedder() -> dlib.face_recognition_model_v1:
    return dlib.face_recognition_model_v1(str(dlib_model_path(FACE_EMBEDDING_RESNET)))


@functools.cache
def _shape_predictor_5() -> dlib.shape_predictor:
    return dlib.shape_predictor(str(dlib_model_path(SHAPE_PREDICTOR_5)))


def face_embedding(rgb: np.ndarray) -> np.ndarray | None:
    """dlib's 128-d ResNet face descriptor of the largest face, or None when there is no face."""
    boxes = detect_face_boxes(to_gray(rgb))
    if not boxes:
        return None
    left, top, right, bottom = (int(v) for v in boxes[0])
    rect = dlib.rectangle(left, top, right, bottom)
    image = np.ascontiguousarray(rgb)
    with _lock:
        shape = _shape_predictor_5()(image, rect)
        descriptor = _embedder().compute_face_descriptor(image, shape)
    return np.asarray(descriptor, dtype=np.float32)


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


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
