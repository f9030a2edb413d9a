"""Regions of interest as numpy arrays: rotated squares in frame pixels, where the networks look.

A face ROI comes from a BlazeFace detection (box scaled 1.5x, rotated so the eyes are level) or from the
previous frame's 468 points (their extent along the eye line, scaled 1.5x), as in MediaPipe's
face_landmark_front graph; an eye ROI from the mesh's eye corners (models/facemesh/eyes.py). A ROI is a few
numbers per face, so it is computed here, on the CPU, whatever runs the networks. Frame coordinates use the
pixel-index convention (pixel i's centre is i); crop coordinates are the networks' own, 0..side across:

    frame_point = centre + size * R(angle) @ (crop_point / side - 0.5)

`crop_matrix` turns that into the inverse map cv2.warpAffine wants; models/facemesh/roi.py is the torch side
(grid_sample crops on a device) of the same convention.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ROI_SCALE = 1.5  # face box -> crop side, MediaPipe's value for both ROI sources
RIGHT_EYE_CORNER, LEFT_EYE_CORNER = 33, 263  # mesh points: outer eye corners (subject's right, left)
RIGHT_EYE_KEYPOINT, LEFT_EYE_KEYPOINT = 0, 1  # BlazeFace keypoints


@dataclass
class FaceRois:
    """N rotated squares in frame pixels."""

    centre: np.ndarray  # (N, 2) x, y
    size: np.ndarray  # (N,) side length
    angle: np.ndarray  # (N,) radians; positive turns the crop's x axis towards +y (down) in the frame

    def __len__(self) -> int:
        return len(self.size)

    def take(self, rows: list[int] | np.ndarray) -> FaceRois:
        return FaceRois(self.centre[rows], self.size[rows], self.angle[rows])

    @staticmethod
    def cat(rois: list[FaceRois]) -> FaceRois:
        return FaceRois(np.concatenate([r.centre for r in rois]), np.concatenate([r.size for r in rois]),
                        np.concatenate([r.angle for r in rois]))


def line_angle(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Angle of the line start -> end (..., 2), e.g. from the subject's right eye (image left) to the left one."""
    delta = end - start
    return np.arctan2(delta[..., 1], delta[..., 0])


def rois_from_detection(boxes: np.ndarray, keypoints: np.ndarray) -> FaceRois:
    """Boxes (N, 4) ltrb and BlazeFace keypoints (N, 6, 2) -> face ROIs."""
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    size = (boxes[:, 2:] - boxes[:, :2]).max(axis=1) * ROI_SCALE
    return FaceRois(centre, size, line_angle(keypoints[:, RIGHT_EYE_KEYPOINT], keypoints[:, LEFT_EYE_KEYPOINT]))


def rois_from_landmarks(points: np.ndarray) -> FaceRois:
    """Mesh points (N, 468, 2 or 3) in frame pixels -> face ROIs for the next frame.

    The extent is measured along the eye line, not the image axes, so a tilted head does not get a
    looser crop (an axis-aligned box grows by up to 41% at 45 degrees of roll)."""
    x, y = points[..., 0].astype(np.float64), points[..., 1].astype(np.float64)
    angle = np.arctan2(y[:, LEFT_EYE_CORNER] - y[:, RIGHT_EYE_CORNER], x[:, LEFT_EYE_CORNER] - x[:, RIGHT_EYE_CORNER])
    cos, sin = np.cos(angle)[:, None], np.sin(angle)[:, None]
    along, across = x * cos + y * sin, y * cos - x * sin  # frame -> crop axes (R^T applied)
    low_u, high_u, low_v, high_v = along.min(1), along.max(1), across.min(1), across.max(1)
    u, v = (low_u + high_u) / 2, (low_v + high_v) / 2
    centre = np.stack([u * cos[:, 0] - v * sin[:, 0], u * sin[:, 0] + v * cos[:, 0]], axis=-1)
    return FaceRois(centre, np.maximum(high_u - low_u, high_v - low_v) * ROI_SCALE, angle)


def crop_matrix(centre: np.ndarray, size: float, angle: float, side: int, mirrored: bool = False) -> np.ndarray:
    """The (2, 3) map from crop pixel indices to frame pixels for `cv2.warpAffine(..., WARP_INVERSE_MAP)`.

    Crop pixel u's centre is crop coordinate u + 0.5 (bilinear, as grid_sample with align_corners=False);
    `mirrored` flips the crop left-right (crop coordinate x -> side - x), as the left eye is fed."""
    # One ROI's few numbers: plain floats, as numpy's per-call overhead would outweigh the arithmetic.
    scale = float(size) / side
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
    flip = -1.0 if mirrored else 1.0  # negate the crop x axis (the first column)
    first = 0.5 - side / 2  # crop pixel 0's centre, relative to the crop's middle
    return np.array([[flip * cos, -sin, centre[0] + (flip * cos - sin) * first],
                     [flip * sin, cos, centre[1] + (flip * sin + cos) * first]])


def points_to_frame(points: np.ndarray, rois: FaceRois, side: int) -> np.ndarray:
    """Network output (N, P, 3) in pixels of a side x side crop -> frame pixels; z is scaled like x and y."""
    scale = (rois.size / side)[:, None]
    cos, sin = np.cos(rois.angle)[:, None] * scale, np.sin(rois.angle)[:, None] * scale
    u, v = points[..., 0] - side / 2, points[..., 1] - side / 2
    out = np.empty(points.shape, np.float64)
    out[..., 0] = u * cos - v * sin + rois.centre[:, :1]
    out[..., 1] = u * sin + v * cos + rois.centre[:, 1:]
    out[..., 2:] = points[..., 2:] * scale[..., None]
    return out
