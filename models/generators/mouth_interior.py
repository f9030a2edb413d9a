"""An open mouth's inside taken from the caller: their own teeth, tongue and shadow, fitted into the avatar's lips.

The target photo rarely shows the inside of a mouth, and a painted cavity with a band of teeth reads as a drawing.
The caller's mouth is open in the very frame that opens the avatar's, so its inside is cut from the driver frame,
mapped onto the avatar's inner lips (a least-squares affine map between the two inner-lip outlines), given the
target's lighting (per channel, the ratio of the target's skin to the caller's) and blended in with a soft edge.
Where the caller's mouth is too small in the frame to give a picture (a few pixels), the painted cavity stays.
"""

from __future__ import annotations

import cv2
import numpy as np

from models.face_measures import mouth_opening
from models.generators.paint import INNER_MOUTH, FaceColours, Painted, _mask, _roi
from models.landmarks import face_size

MIN_DRIVER_GAP_PX = 3.0  # the caller's inner-lip gap in frame pixels below which their mouth gives no picture
SKIN_POINTS = [28, 29, 30]  # the nose bridge, where FaceColours.skin is read on the target


def _skin(frame: np.ndarray, points: np.ndarray) -> np.ndarray:
    xy = np.clip(np.round(points[SKIN_POINTS]).astype(int), 0, np.array(frame.shape[1::-1]) - 1)
    return frame[xy[:, 1], xy[:, 0]].astype(np.float32).mean(axis=0)


def paste_caller_mouth(image: np.ndarray, avatar: np.ndarray, frame: np.ndarray, caller: np.ndarray,
                       colours: FaceColours) -> Painted | None:
    """In place: the caller's mouth inside (`frame`, their 68 points `caller`) fitted into the avatar's open inner
    lips (`avatar`, 68 points in `image`). -> where it pasted; None (nothing done) where the avatar's mouth is
    closed or the caller's gives no picture: the caller then falls back to the painted cavity."""
    opening = mouth_opening(avatar)
    strength = float(np.clip((opening - colours.mouth_gap - 0.02) / 0.06, 0, 1))
    gap_px = float(np.linalg.norm(caller[[61, 62, 63]] - caller[[67, 66, 65]], axis=1).mean())
    if strength <= 0 or gap_px < MIN_DRIVER_GAP_PX:
        return None
    source, target = caller[INNER_MOUTH].astype(np.float32), avatar[INNER_MOUTH].astype(np.float32)
    matrix, _ = cv2.estimateAffine2D(source, target, method=cv2.LMEDS)
    if matrix is None:
        return None
    blur = max(0.5, 0.04 * opening * face_size(avatar))
    x0, y0, x1, y1 = _roi(avatar[48:68], 4 * blur + 2, image.shape)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    matrix[:, 2] -= (x0, y0)  # into the region's own pixels
    inside = cv2.warpAffine(frame, matrix, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REFLECT).astype(np.float32)
    # The target's lighting: per channel, its skin over the caller's (bounded, so a dark frame is not blown up).
    gain = np.clip(colours.skin / np.maximum(_skin(frame, caller), 1.0), 0.5, 2.0)
    mask = _mask((y1 - y0, x1 - x0), [avatar[INNER_MOUTH] - np.array([x0, y0], np.float32)], blur)[..., None]
    mask *= strength
    patch = image[y0:y1, x0:x1].astype(np.float32)
    image[y0:y1, x0:x1] = np.clip(patch * (1 - mask) + inside * gain * mask, 0, 255).astype(np.uint8)
    return Painted(slice(y0, y1), slice(x0, x1), mask[..., 0])
