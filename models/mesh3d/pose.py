"""Head pose from 3-D face meshes: weighted similarity Procrustes (Umeyama) and Euler angles.

Meshes are FaceMesh output in image axes: x right, y down, z away from the camera, all in pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Pose:
    """points_b ~= scale * rotation @ (points_a - centre_a) + centre_b (row-vector form in `apply`)."""

    rotation: np.ndarray  # (3, 3) proper rotation
    scale: float
    centre_a: np.ndarray  # (3,) weighted centroid of the source points
    centre_b: np.ndarray  # (3,) weighted centroid of the destination points

    def apply(self, points: np.ndarray) -> np.ndarray:
        return (points - self.centre_a) @ self.rotation.T * self.scale + self.centre_b

    def invert(self, points: np.ndarray) -> np.ndarray:
        """Destination-space points back into the source's frame."""
        return (points - self.centre_b) @ self.rotation / self.scale + self.centre_a


def procrustes(a: np.ndarray, b: np.ndarray, weights: np.ndarray) -> Pose:
    """The similarity that best maps points a (N, 3) onto b (N, 3) in the weighted least-squares sense."""
    w = np.asarray(weights, np.float64)
    w = w / max(w.sum(), 1e-12)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    centre_a, centre_b = w @ a64, w @ b64
    da, db = a64 - centre_a, b64 - centre_b
    covariance = (db * w[:, None]).T @ da
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.ones(3)
    sign[2] = np.sign(np.linalg.det(u @ vt)) or 1.0  # no reflections
    rotation = u @ np.diag(sign) @ vt
    variance = float(w @ (da**2).sum(axis=1))
    scale = float((singular * sign).sum() / max(variance, 1e-12))
    return Pose(rotation, scale, centre_a, centre_b)


def euler_degrees(rotation: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) of a rotation in image axes: yaw about y (down), pitch about x, roll about z."""
    # rotation = Ry(yaw) @ Rx(pitch) @ Rz(roll)
    pitch = np.arcsin(np.clip(-rotation[1, 2], -1.0, 1.0))
    yaw = np.arctan2(rotation[0, 2], rotation[2, 2])
    roll = np.arctan2(rotation[1, 0], rotation[1, 1])
    return float(np.degrees(yaw)), float(np.degrees(pitch)), float(np.degrees(roll))


def rotation_from_euler(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """The inverse of euler_degrees (angles in degrees)."""
    y, p, r = np.radians([yaw, pitch, roll])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return ry @ rx @ rz
