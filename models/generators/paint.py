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
CAVITY_RGB = np.array([74, 24, 28], np.float32)  # the cavity's floor (tongue's shadow)
OWN_TEETH_SHARE = 1.0  # of the photo's own mouth opening: its teeth, kept under the upper lip at their size
TOOTH_GAPS = np.array([0.0, 0.24, 0.44, 0.62, 0.78])  # along a half mouth, middle = 0, corner = 1
CAVITY_DEEP = np.array([22, 8, 10], np.float32)  # the shadow under the upper teeth
TEETH_RGB = np.array([232, 226, 212], np.float32)


@dataclass(frozen=True)
class FaceColours:
    """Per-target colours and rest measures (computed once in prepare)."""

    skin: np.ndarray  # RGB float32 of the nose bridge
    lips: np.ndarray  # RGB float32: the target's lips (a tongue is tinted by them)
    teeth: np.ndarray  # RGB float32: the target's own teeth if its photo shows them, else a lit off-white
    mouth_gap: float  # mouth_opening() at rest
    eye_open: tuple[float, float]  # eye_openness() of each eye at rest
    shows_teeth: bool = False  # the photo shows the target's teeth (so a mesh can stretch them open)


@dataclass(frozen=True)
class Painted:
    """Where a paint function covered the picture: its region of the frame and, there, how much (0..1)."""

    rows: slice
    cols: slice
    alpha: np.ndarray  # (rows, cols) float32

    def mask(self, shape: tuple[int, int], at_least: float = 0.5) -> np.ndarray:
        """(H, W) bool: pixels covered at least `at_least`, what a viewer sees painted rather than sampled."""
        full = np.zeros(shape, bool)
        full[self.rows, self.cols] = self.alpha >= at_least
        return full


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114], np.float32)


def _teeth(image: np.ndarray, landmarks: np.ndarray, skin: np.ndarray) -> np.ndarray | None:
    """The median colour of the teeth the photo shows inside these inner lips, or None if it shows none."""
    mouth = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(mouth, [np.round(landmarks[INNER_MOUTH]).astype(np.int32)], 1)
    inside = image[mouth > 0].astype(np.float32)
    bright = inside[_luminance(inside) > 0.9 * _luminance(skin)] if len(inside) else inside
    if len(bright) >= 12 and len(bright) > 0.2 * len(inside):
        return np.median(bright, axis=0)
    return None


def face_colours(image: np.ndarray, landmarks: np.ndarray, other_landmarks: tuple[np.ndarray, ...] = ()
                 ) -> FaceColours:
    """`landmarks`: the 68 points the generator paints with; `other_landmarks`: the same face by another
    landmarker (dlib's inner lips and the mesh's disagree on a smile), also looked at for the photo's teeth."""
    size = image.shape[0]
    bridge = np.clip(np.round(landmarks[[28, 29, 30]]).astype(int), 0, size - 1)
    skin = image[bridge[:, 1], bridge[:, 0]].astype(np.float32).mean(axis=0)
    teeth = next((found for points in (landmarks, *other_landmarks)
                  if (found := _teeth(image, points, skin)) is not None), None)
    shows_teeth = teeth is not None
    if teeth is None:
        # Off-white tinted by the skin and dimmed to the photo's lighting: pure white looks pasted on.
        teeth = (0.75 * TEETH_RGB + 0.25 * skin) * float(np.clip(_luminance(skin) / 190.0, 0.5, 0.95))
    mouth = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(mouth, [np.round(landmarks[INNER_MOUTH]).astype(np.int32)], 1)
    lip_band = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(lip_band, [np.round(landmarks[48:60]).astype(np.int32)], 1)
    lip_band[mouth > 0] = 0
    lip_pixels = image[lip_band > 0].astype(np.float32)
    lips = np.median(lip_pixels, axis=0) if len(lip_pixels) else skin * np.array([1.0, 0.7, 0.7], np.float32)
    return FaceColours(skin, lips.astype(np.float32), teeth.astype(np.float32), mouth_opening(landmarks),
                       (eye_openness(landmarks, LEFT_EYE), eye_openness(landmarks, RIGHT_EYE)), shows_teeth)


def _roi(points: np.ndarray, margin: float, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    x0, y0 = np.floor(points.min(axis=0) - margin).astype(int)
    x1, y1 = np.ceil(points.max(axis=0) + margin).astype(int)
    return max(x0, 0), max(y0, 0), min(x1, shape[1]), min(y1, shape[0])


def _mask(shape: tuple[int, int], polygons: list[np.ndarray], blur: float) -> np.ndarray:
    mask = np.zeros(shape, np.float32)
    cv2.fillPoly(mask, [np.round(p * 16).astype(np.int32) for p in polygons], 1.0, lineType=cv2.LINE_AA, shift=4)
    return cv2.GaussianBlur(mask, (0, 0), blur) if blur > 0 else mask


def _lip_curve(points: np.ndarray, centre: np.ndarray, axis: np.ndarray, down: np.ndarray
               ) -> tuple[np.ndarray, float, float]:
    """A lip line as a smooth curve in the mouth's own frame: quadratic coefficients of its depth below the
    centre as a function of the position along the mouth, and the span (min, max) along the mouth it covers."""
    along = (points - centre) @ axis
    depth = (points - centre) @ down
    return np.polyfit(along, depth, 2 if len(points) > 2 else 1), float(along.min()), float(along.max())


def _ramp(distance: np.ndarray, softness: float) -> np.ndarray:
    """0 outside, 1 inside, a soft edge `softness` px wide (distance > 0 = inside)."""
    return np.clip(distance / max(softness, 1e-3) + 0.5, 0.0, 1.0)


def paint_mouth(image: np.ndarray, driven: np.ndarray, colours: FaceColours, hole: np.ndarray | None = None
                ) -> Painted | None:
    """In place: what an opened mouth shows inside its inner lips, in the mouth's own frame so every edge is a
    smooth curve: a cavity graded from deep shadow under the upper teeth to the tongue's red, darker towards the
    corners; upper teeth hanging from the upper lip with faint gaps between them and shade towards the corners;
    lower teeth and a tongue as it opens wide. A photo that shows its own teeth keeps them: only the gap the
    opening adds between its teeth rows is painted dark, down to the lower lip of `hole` (the generator's own
    mouth opening, (K, 2) output pixels, where it samples no lip; default the inner lips of `driven`).
    -> where it painted (None: a closed mouth)."""
    opening = mouth_opening(driven)
    strength = float(np.clip((opening - colours.mouth_gap - 0.02) / 0.06, 0, 1))
    if strength <= 0:
        return None
    scale = face_size(driven)
    gap_px = opening * scale
    width = float(np.linalg.norm(driven[64] - driven[60]))
    if width < 2 or gap_px < 1:
        return None
    axis = (driven[64] - driven[60]) / width
    down = np.array([-axis[1], axis[0]])
    if down @ (driven[66] - driven[62]) < 0:
        down = -down
    x0, y0, x1, y1 = _roi(driven[48:68] if hole is None else np.concatenate([driven[48:68], hole]), 3, image.shape)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    centre = driven[INNER_MOUTH].mean(axis=0)
    upper, left, right = _lip_curve(driven[UPPER_INNER_LIP], centre, axis, down)
    lower, _, _ = _lip_curve(driven[LOWER_INNER_LIP], centre, axis, down)
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    a = (xs - centre[0]) * axis[0] + (ys - centre[1]) * axis[1]  # along the mouth
    b = (xs - centre[0]) * down[0] + (ys - centre[1]) * down[1]  # down the face
    top, bottom = np.polyval(upper, a), np.polyval(lower, a)
    half = max((right - left) / 2, 1.0)
    a -= (left + right) / 2  # from the middle of the opening
    side = np.clip(np.abs(a) / half, 0, 1)  # 0 at the middle, 1 at a corner
    soft = max(0.7, 0.03 * gap_px)
    cavity = _ramp(np.minimum(b - top, bottom - b), soft) * _ramp(half - np.abs(a), soft)
    depth = np.clip((b - top) / np.maximum(bottom - top, 1e-3), 0, 1)  # 0 under the upper lip, 1 at the lower
    shade = (1 - 0.55 * side**2)[..., None]
    # Deep shadow under the upper teeth, the tongue's red further down: never one flat colour.
    inside = (CAVITY_DEEP + (CAVITY_RGB - CAVITY_DEEP) * depth[..., None]) * shade
    below_own_teeth = 1.0
    if colours.shows_teeth:
        # The photo's own teeth hang from the upper lip at their own size (the mesh generator samples them
        # unstretched, models/mesh3d/render.py); below them the cavity.
        own = OWN_TEETH_SHARE * colours.mouth_gap * scale * (1 - side**2)  # the photo's opening narrows to the corners
        below_own_teeth = _ramp(b - top - own, 1.5 * soft)
        teeth = np.zeros_like(cavity)
        paint = inside
    else:
        upper_depth = min(0.45 * gap_px, 0.2 * width) * (1 - 0.65 * side**2)
        teeth = _ramp(upper_depth - (b - top), soft)
        # Faint gaps between teeth: wide incisors in the middle, narrower teeth towards the corners.
        nearest_gap = np.abs(side[..., None] - TOOTH_GAPS).min(axis=-1) * half  # px
        tooth = colours.teeth * (1 - 0.1 * np.exp(-(nearest_gap / 0.5) ** 2))[..., None]
        tooth = tooth * (1 - 0.12 * depth)[..., None]
        paint = inside * (1 - teeth[..., None]) + tooth * shade * teeth[..., None]
    wide = float(np.clip((gap_px / width - 0.3) / 0.2, 0, 1))
    if wide > 0:  # a tongue on the floor of a wide-open mouth, the lower teeth's edges in the lip's shadow
        tongue_centre = bottom - 0.25 * (bottom - top)
        reach = (a / (0.5 * half)) ** 2 + ((b - tongue_centre) / (0.3 * (bottom - top) + 1e-3)) ** 2
        tongue = wide * _ramp(1 - reach, 0.3) * (1 - teeth)
        tint = colours.lips * (0.4 + 0.2 * (1 - depth))[..., None] * shade  # in the mouth's shadow
        paint = paint * (1 - tongue[..., None]) + tint * tongue[..., None]
        lower_depth = min(0.12 * gap_px, 0.07 * width) * (1 - 0.8 * side**2)
        lower = wide * _ramp(lower_depth - (bottom - b), soft)[..., None]
        paint = paint * (1 - lower) + 0.7 * colours.teeth * shade * lower
    cover = cavity
    if hole is not None:
        # Between the opening a viewer sees and the generator's hole, below it: the lower lip's inner side,
        # lip-coloured, so that what the generator samples there (stretched or shifted teeth) never shows. A pixel
        # beyond the hole's edge too: the map is built at half resolution. (Above, the upper lip's own texture.)
        whole = np.clip(3 * _mask((y1 - y0, x1 - x0), [hole - np.array([x0, y0])], 1.2), 0, 1)
        whole *= _ramp(b - (top + bottom) / 2, soft)
        lip_side = colours.lips * (0.9 + 0.1 * shade)
        paint = paint * cavity[..., None] + lip_side * (1 - cavity[..., None])
        cover = np.maximum(cavity, whole)
    cover = cover * below_own_teeth
    alpha = (cover * strength).astype(np.float32)
    patch = image[y0:y1, x0:x1].astype(np.float32)
    image[y0:y1, x0:x1] = np.clip(patch * (1 - alpha[..., None]) + paint * alpha[..., None], 0, 255).astype(np.uint8)
    return Painted(slice(y0, y1), slice(x0, x1), alpha)


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
