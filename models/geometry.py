"""Small 2-D geometry helpers on landmark arrays."""

from __future__ import annotations

import numpy as np

# Points that move little with expression: eye corners and the nose bridge/tip.
STABLE_POINTS = np.array([27, 28, 29, 30, 31, 33, 35, 36, 39, 42, 45])


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 matrix M (rotation, uniform scale, translation) with dst ≈ M @ [src, 1], least squares (Umeyama)."""
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    covariance = dst_c.T @ src_c / len(src)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rotation = u @ sign @ vt
    scale = np.trace(np.diag(singular) @ sign) / max((src_c**2).sum() / len(src), 1e-12)
    matrix = np.zeros((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - scale * rotation @ src_mean
    return matrix


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def invert(matrix: np.ndarray) -> np.ndarray:
    linear_inv = np.linalg.inv(matrix[:, :2])
    out = np.zeros((2, 3))
    out[:, :2] = linear_inv
    out[:, 2] = -linear_inv @ matrix[:, 2]
    return out


def scale_and_angle(matrix: np.ndarray) -> tuple[float, float]:
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    angle = float(np.arctan2(matrix[1, 0], matrix[0, 0]))
    return scale, angle
