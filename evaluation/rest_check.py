"""Is the avatar the photo at rest, does its map tear, and which frame matches the driver worst?

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

TEAR_PX = 4.0  # two neighbouring output pixels sampling face points further apart than this: a tear
TEAR_OUTLINE = 0.06  # of the face width: the band along the face outline that tear_share does not judge
FAR_OFF = 60  # of 255, any channel: a pixel this far off the photo is a visible fault, not codec or resampling noise
REGION_DILATION = 0.12  # of the face width (jaw to jaw)
WORST_SIGNALS = ("yaw", "pitch", "mouth", "eyes")


def _disc(landmarks: np.ndarray, share: float) -> np.ndarray:
    """A round structuring element whose radius is `share` of the jaw-to-jaw width."""
    radius = max(1, round(share * float(np.ptp(landmarks[:17, 0]))))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def face_region(landmarks: np.ndarray, shape: tuple[int, int], dilation: float = REGION_DILATION) -> np.ndarray:
    """(H, W) bool: the 68 points' convex hull, dilated by `dilation` of the jaw-to-jaw width."""
    mask = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(landmarks).astype(np.int32)), 1)
    if dilation <= 0:
        return mask.astype(bool)
    return cv2.dilate(mask, _disc(landmarks, dilation)).astype(bool)


def _far_off(avatar: np.ndarray, photo: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(far, region): pixels more than FAR_OFF off the photo in any channel, and the face region."""
    if avatar.shape != photo.shape:
        raise ValueError(f"avatar {avatar.shape} and photo {photo.shape} differ in size")
    far = np.abs(avatar.astype(np.int16) - photo.astype(np.int16)).max(axis=2) > FAR_OFF
    return far, face_region(landmarks, photo.shape[:2])


def rest_difference(avatar: np.ndarray, photo: np.ndarray, landmarks: np.ndarray) -> float:
    """Share of the face region's pixels more than FAR_OFF off the aligned photo (0 = the photo itself)."""
    far, region = _far_off(avatar, photo, landmarks)
    return float(far[region].mean())


def rest_overlay(avatar: np.ndarray, photo: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The avatar with its far-off pixels in the face region painted red: where a person should look."""
    far, region = _far_off(avatar, photo, landmarks)
    marked = avatar.copy()
    marked[far & region] = (255, 0, 0)
    return marked


def tear_face(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool in photo pixels: the face whose texture must not tear, the 68 points' hull less an outline band
    of TEAR_OUTLINE of the face width (where the face meets hair or background a jump is the silhouette)."""
    hull = face_region(landmarks, shape, dilation=0.0).astype(np.uint8)
    return cv2.erode(hull, _disc(landmarks, TEAR_OUTLINE)).astype(bool)


OPENINGS_68 = (slice(60, 68), slice(36, 42), slice(42, 48))  # dlib's inner lips, the right and the left eye


def openings_mask(avatar_landmarks: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray | None:
    """(H, W) bool in output pixels: inside the avatar's inner lips and each eye's lids (dlib's 60-67, 36-41,
    42-47), 2 px wider. Where lips part or lids meet, the two sides are different skin in any face: the
    mouth's inside is painted and a closed eye's lash line is where the upper lid's skin meets the lower
    lid's, a line, not a tear. None without landmarks."""
    if avatar_landmarks is None:
        return None
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(avatar_landmarks[part]).astype(np.int32) for part in OPENINGS_68], 1)
    return cv2.dilate(mask, np.ones((5, 5), np.uint8)).astype(bool)


def tear_mask(map_xy: np.ndarray, source_face: np.ndarray, exclude: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """(torn, face): output pixels on a tear, and the output pixels judged. A pixel is judged when it samples the
    photo's face (`source_face`, (H, W) bool in photo pixels, e.g. tear_face) and is not in `exclude` (an open
    mouth); it is torn when a judged 4-neighbour samples a point more than TEAR_PX away: a seam runs between."""
    height, width = source_face.shape
    x = np.clip(np.round(map_xy[..., 0]), 0, width - 1).astype(np.intp)
    y = np.clip(np.round(map_xy[..., 1]), 0, height - 1).astype(np.intp)
    face = source_face[y, x]
    if exclude is not None:
        face &= ~exclude
    torn = np.zeros(face.shape, bool)
    for axis in (0, 1):
        step = np.diff(map_xy, axis=axis)
        jump = np.hypot(step[..., 0], step[..., 1]) > TEAR_PX
        both = (face[1:, :] & face[:-1, :]) if axis == 0 else (face[:, 1:] & face[:, :-1])
        pair = jump & both
        if axis == 0:
            torn[1:, :] |= pair
            torn[:-1, :] |= pair
        else:
            torn[:, 1:] |= pair
            torn[:, :-1] |= pair
    return torn, face


def tear_share(map_xy: np.ndarray, source_face: np.ndarray, exclude: np.ndarray | None = None) -> float | None:
    """Share of the judged output pixels that are torn (tear_mask); None when no output pixel samples the face."""
    torn, face = tear_mask(map_xy, source_face, exclude)
    return float(torn[face].mean()) if face.any() else None


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
