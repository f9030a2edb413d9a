"""What a warp cannot produce, painted on: the inside of an opened mouth, and closed eyelids.

A warp only moves the target photo's pixels. A target photographed with a closed mouth has no teeth
or mouth cavity to move, so stretching its lips apart would look like rubber; an open eye has no
eyelid to pull down. Both are painted from the landmarks, soft-edged, in colours taken from the
target photo so they match its lighting. Work is done on a small region of interest for speed.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from models.face_measures import LEFT_EYE, RIGHT_EYE, eye_openness, mouth_opening
from models.landmarks import face_size

INNER_MOUTH = np.arange(60, 68)
UPPER_INNER_LIP = np.array([60, 61, 62, 63, 64])
LOWER_INNER_LIP = np.array([64, 65, 66, 67, 60])
CAVITY_RGB = np.array([58, 18, 22], np.float32)
TEETH_RGB = np.array([232, 226, 212], np.float32)


@dataclass(frozen=True)
class FaceColours:
    """Per-target colours and rest measures (computed once in prepare)."""

    skin: np.ndarray  # RGB float32 of the nose bridge
    teeth: np.ndarray  # RGB float32: the target's own teeth if its photo shows them, else a lit off-white
    mouth_gap: float  # mouth_opening() at rest
    eye_open: tuple[float, float]  # eye_openness() of each eye at rest
    shows_teeth: bool = False  # the photo shows the target's teeth (so a mesh can stretch them open)


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114], np.float32)


def face_colours(image: np.ndarray, landmarks: np.ndarray) -> FaceColours:
    size = image.shape[0]
    bridge = np.clip(np.round(landmarks[[28, 29, 30]]).astype(int), 0, size - 1)
    skin = image[bridge[:, 1], bridge[:, 0]].astype(np.float32).mean(axis=0)
    mouth = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(mouth, [np.round(landmarks[INNER_MOUTH]).astype(np.int32)], 1)
    inside = image[mouth > 0].astype(np.float32)
    bright = inside[_luminance(inside) > 0.9 * _luminance(skin)] if len(inside) else inside
    shows_teeth = bool(len(bright) >= 12 and len(bright) > 0.2 * len(inside))
    if shows_teeth:
        teeth = np.median(bright, axis=0)  # the photo shows teeth: use their real colour
    else:
        # Off-white tinted by the skin and dimmed to the photo's lighting: pure white looks pasted on.
        teeth = (0.75 * TEETH_RGB + 0.25 * skin) * float(np.clip(_luminance(skin) / 190.0, 0.5, 0.95))
    return FaceColours(skin, teeth.astype(np.float32), mouth_opening(landmarks),
                       (eye_openness(landmarks, LEFT_EYE), eye_openness(landmarks, RIGHT_EYE)), shows_teeth)


def _roi(points: np.ndarray, margin: float, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    x0, y0 = np.floor(points.min(axis=0) - margin).astype(int)
    x1, y1 = np.ceil(points.max(axis=0) + margin).astype(int)
    return max(x0, 0), max(y0, 0), min(x1, shape[1]), min(y1, shape[0])


def _mask(shape: tuple[int, int], polygons: list[np.ndarray], blur: float) -> np.ndarray:
    mask = np.zeros(shape, np.float32)
    cv2.fillPoly(mask, [np.round(p * 16).astype(np.int32) for p in polygons], 1.0, lineType=cv2.LINE_AA, shift=4)
    return cv2.GaussianBlur(mask, (0, 0), blur) if blur > 0 else mask


def _band(lip: np.ndarray, direction: np.ndarray, depth: float, taper: float) -> np.ndarray:
    """A polygon hanging `depth` px from a lip line along `direction`, shallower towards the corners."""
    t = np.linspace(-1, 1, len(lip))
    inner = lip + np.outer(depth * (1 - (1 - taper) * t**2), direction)
    return np.concatenate([lip, inner[::-1]])


def paint_mouth(image: np.ndarray, driven: np.ndarray, colours: FaceColours) -> None:
    """In place: an open mouth's dark cavity with upper (and, wide open, lower) teeth inside the inner lips."""
    opening = mouth_opening(driven)
    strength = float(np.clip((opening - colours.mouth_gap - 0.02) / 0.06, 0, 1))
    if strength <= 0:
        return
    gap_px = opening * face_size(driven)
    width = float(np.linalg.norm(driven[64] - driven[60]))
    if width < 2 or gap_px < 1:
        return
    axis = (driven[64] - driven[60]) / width
    down = np.array([-axis[1], axis[0]])
    if down @ (driven[66] - driven[62]) < 0:
        down = -down
    blur = max(0.5, 0.04 * gap_px)
    x0, y0, x1, y1 = _roi(driven[48:68], 4 * blur + 2, image.shape)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    offset = np.array([x0, y0], np.float32)
    shape = (y1 - y0, x1 - x0)
    cavity = _mask(shape, [driven[INNER_MOUTH] - offset], blur)
    # A smile that shows teeth in the photo shows big teeth rows when it opens, with a dark gap between.
    upper_depth = min(0.42 * gap_px, 0.3 * width) if colours.shows_teeth else min(0.5 * gap_px, 0.2 * width)
    upper = _band(driven[UPPER_INNER_LIP] - offset, down, upper_depth, 0.35)
    teeth = _mask(shape, [upper], 0.6 * blur)
    if gap_px > 0.3 * width or colours.shows_teeth:  # wide open: the lower teeth show too
        lower_depth = min(0.3 * gap_px, 0.2 * width) if colours.shows_teeth else min(0.18 * gap_px, 0.1 * width)
        lower = _band(driven[LOWER_INNER_LIP] - offset, -down, lower_depth, 0.2)
        teeth = np.maximum(teeth, _mask(shape, [lower], 0.6 * blur))
    teeth = np.minimum(teeth, cavity)
    # Teeth recede into shadow towards the mouth corners.
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    centre = driven[INNER_MOUTH].mean(axis=0) - offset
    along = np.abs((xs - centre[0]) * axis[0] + (ys - centre[1]) * axis[1]) / (0.5 * width)
    shade = np.clip(1 - 0.45 * along**2, 0.35, 1)[..., None]
    patch = image[y0:y1, x0:x1].astype(np.float32)
    cavity, teeth = (cavity * strength)[..., None], (teeth * strength)[..., None]
    patch = patch * (1 - cavity) + CAVITY_RGB * cavity
    patch = patch * (1 - teeth) + colours.teeth * shade * teeth
    image[y0:y1, x0:x1] = np.clip(patch, 0, 255).astype(np.uint8)


def paint_eyes(image: np.ndarray, driven: np.ndarray, colours: FaceColours, from_closed: float = 0.35,
               fully_at: float = 0.75) -> None:
    """In place: an eye that closes more than `from_closed` (share of its rest opening) is covered by lid skin,
    with a lash line, fully from `fully_at` on."""
    for eye, rest in zip((LEFT_EYE, RIGHT_EYE), colours.eye_open, strict=True):
        closed = 1.0 - eye_openness(driven, eye) / max(rest, 1e-6)
        strength = float(np.clip((closed - from_closed) / (fully_at - from_closed), 0, 1))
        if strength <= 0:
            continue
        points = driven[eye]
        width = float(np.linalg.norm(points[3] - points[0]))
        if width < 2:
            continue
        axis = (points[3] - points[0]) / width
        normal = np.array([-axis[1], axis[0]])  # points down the face for both eyes
        if normal @ (points[4] + points[5] - points[1] - points[2]) < 0:
            normal = -normal
        centre = points.mean(axis=0)
        # The lid covers the eye opening, a little beyond the corners.
        along = (points - centre) @ axis
        lid = centre + np.outer(along * 1.15, axis)
        lid[[1, 2]] -= 0.22 * width * normal
        lid[[4, 5]] += 0.22 * width * normal
        blur = max(0.5, 0.08 * width)
        x0, y0, x1, y1 = _roi(lid, 3 * blur + 2, image.shape)
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        offset = np.array([x0, y0], np.float32)
        mask = _mask((y1 - y0, x1 - x0), [lid - offset], blur)[..., None] * strength
        # Lid colour: skin just above the eye (below the brow), mixed with the nose bridge's for robustness.
        above = np.round(centre - 0.45 * width * normal).astype(int)
        above = np.clip(above, 0, np.array(image.shape[1::-1]) - 1)
        sample = image[max(above[1] - 1, 0):above[1] + 2, max(above[0] - 1, 0):above[0] + 2].reshape(-1, 3)
        colour = 0.5 * np.median(sample, axis=0).astype(np.float32) + 0.5 * colours.skin
        patch = image[y0:y1, x0:x1].astype(np.float32)
        patch = patch * (1 - mask) + colour * mask
        lash = np.round(np.stack([points[0], points[3]]) - offset).astype(int)  # where the lids meet
        line = np.zeros(patch.shape[:2], np.float32)
        cv2.line(line, tuple(lash[0]), tuple(lash[1]), 1.0, 1, cv2.LINE_AA)
        line = line[..., None] * strength
        patch = patch * (1 - 0.55 * line)
        image[y0:y1, x0:x1] = np.clip(patch, 0, 255).astype(np.uint8)
