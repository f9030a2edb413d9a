"""Is the avatar the photo at rest, and which frame matches the driver worst?

At the calibration frame the driver's face is its own neutral, so the avatar should be the aligned target photo:
pixels far off it are tears or seams (a dark seam down a cheek, dots along the nose). Measured over the face
region: the convex hull of the target's 68 points, dilated by 12 % of the face width, so a seam on the jaw line
counts and the frame's background does not.
"""

from __future__ import annotations

import cv2
import numpy as np

from evaluation.fidelity import MIN_RANGE, spread
from evaluation.signals import SignalTrack

FAR_OFF = 60  # of 255, any channel: a pixel this far off the photo is a visible fault, not codec or resampling noise
REGION_DILATION = 0.12  # of the face width (jaw to jaw)
WORST_SIGNALS = ("yaw", "pitch", "mouth", "eyes")


def face_region(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: the 68 points' convex hull, dilated by REGION_DILATION of the jaw-to-jaw width."""
    mask = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(landmarks).astype(np.int32)), 1)
    radius = max(1, round(REGION_DILATION * float(np.ptp(landmarks[:17, 0]))))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(mask, kernel).astype(bool)


def rest_difference(avatar: np.ndarray, photo: np.ndarray, landmarks: np.ndarray) -> float:
    """Share of the face region's pixels more than FAR_OFF off the aligned photo (0 = the photo itself)."""
    if avatar.shape != photo.shape:
        raise ValueError(f"avatar {avatar.shape} and photo {photo.shape} differ in size")
    region = face_region(landmarks, photo.shape[:2])
    far = np.abs(avatar.astype(np.int16) - photo.astype(np.int16)).max(axis=2) > FAR_OFF
    return float(far[region].mean())


def rest_overlay(avatar: np.ndarray, photo: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The avatar with its far-off pixels in the face region painted red: where a person should look."""
    region = face_region(landmarks, photo.shape[:2])
    far = (np.abs(avatar.astype(np.int16) - photo.astype(np.int16)).max(axis=2) > FAR_OFF) & region
    marked = avatar.copy()
    marked[far] = (255, 0, 0)
    return marked


def worst_match(driver: SignalTrack, avatar: SignalTrack) -> int | None:
    """The frame where the avatar's motion is furthest from the driver's: per signal, each side's offset from its
    own median, their difference in units of the driver's 5-95 % range, summed over yaw, pitch, mouth and eyes.
    None when no frame has a face on both sides."""
    both = np.flatnonzero(driver.found & avatar.found)
    if not len(both):
        return None
    error = np.zeros(len(both))
    for name in WORST_SIGNALS:
        d = driver.values[name][both]
        a = avatar.values[name][both]
        scale = max(spread(d), MIN_RANGE)
        error += np.nan_to_num(np.abs((d - np.nanmedian(d)) - (a - np.nanmedian(a))) / scale)
    return int(both[int(np.argmax(error))])
