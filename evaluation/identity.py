"""Identity for evaluation and tests: dlib's 128-d face embedding and the cosine between two of them."""

from __future__ import annotations

import functools
import threading

import dlib
import numpy as np

from models.assets import FACE_EMBEDDING_RESNET, SHAPE_PREDICTOR_5, dlib_model_path
from models.landmarks import detect_face_boxes, to_gray

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
