"""Generator v0: a classical piecewise-affine warp of the target photo to the driven landmarks.

The baseline every neural generator is compared with. The 68 landmarks are extended with forehead
points (so the brows carry the forehead), a ring around the head that follows the head pose only, and
fixed image-border anchors (so the background stays put); the target is triangulated once. Per frame,
each output pixel samples the target through the affine map of the triangle it falls in (one dense
cv2.remap). An opened mouth gets a dark cavity with a hint of teeth instead of stretched lips; a
closing eye is covered with the eyelid skin tone.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.spatial import Delaunay

from models import geometry
from models.generators.base import GenerateRequest, Generator
from models.generators.paint import face_colours, paint_eyes, paint_mouth
from models.geometry import STABLE_POINTS

RING_POINTS = 16
RING_MARGIN = 0.06  # of the crop size: the ring keeps this far from the fixed border
MAP_STEP = 2  # the sampling map is built at half resolution (see _sampling_map)


def _forehead(landmarks: np.ndarray) -> np.ndarray:
    up = landmarks[27] - landmarks[8]  # chin -> nose bridge: "up" in the face's own frame
    return landmarks[17:27] + 0.45 * up


def _ring(landmarks: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Points on an ellipse around the head (in the face's frame), pulled inside the crop, and how much
    of the head's motion each follows: all of it above the eyes, less towards the neck, so the
    shoulders stay put while the head turns."""
    centre = landmarks[STABLE_POINTS].mean(axis=0)
    up = landmarks[27] - landmarks[8]
    height = np.linalg.norm(up)
    up_unit = up / max(height, 1e-6)
    right = np.array([-up_unit[1], up_unit[0]])
    if right @ (landmarks[16] - landmarks[0]) < 0:
        right = -right
    angles = np.linspace(0, 2 * np.pi, RING_POINTS, endpoint=False)
    ring = centre + np.outer(np.cos(angles), right * 1.2 * height) + np.outer(np.sin(angles), up_unit * 1.4 * height)
    margin = RING_MARGIN * size
    ring = np.clip(ring, margin, size - 1 - margin)
    # Drop ring points that the clipping stacked on top of each other (they would make slivers).
    keep: list[int] = []
    for index, point in enumerate(ring):
        if all(np.linalg.norm(point - ring[k]) > 0.08 * size for k in keep):
            keep.append(index)
    weights = 0.65 + 0.35 * np.sin(angles[keep])  # sin > 0: the upper half of the ellipse
    return ring[keep].astype(np.float32), weights.astype(np.float32)


def _border(size: int) -> np.ndarray:
    ticks = np.linspace(0, size - 1, 5)
    edges = [(t, 0) for t in ticks] + [(t, size - 1) for t in ticks] + [(0, t) for t in ticks[1:-1]]
    edges += [(size - 1, t) for t in ticks[1:-1]]
    return np.array(edges, np.float32)


def control_points(landmarks: np.ndarray, size: int, ring: np.ndarray) -> np.ndarray:
    return np.concatenate([landmarks, _forehead(landmarks), ring, _border(size)]).astype(np.float32)


def signed_areas(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    a, b, c = points[triangles[:, 0]], points[triangles[:, 1]], points[triangles[:, 2]]
    return (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])


def unfolded_controls(src: np.ndarray, driven: np.ndarray, ring: np.ndarray, ring_motion: np.ndarray,
                      triangles: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Destination control points and triangles that cover the output once, without folds (which tear it).

    Folds come from the ring being pushed across the face outline or against the fixed border: the
    ring's motion is reduced until no triangle outside the face flips. Where the face itself moved past
    the ring (large motion), the destination points are re-triangulated instead: the output then has no
    holes or overlaps, at the price of a smeared band between face and background.
    """
    rest = np.sign(signed_areas(src, triangles))
    best: tuple[int, np.ndarray] | None = None
    for share in (1.0, 0.6, 0.3, 0.0):
        # The ring stays off the border (crossing it folds); points that left the frame are pulled back
        # onto its edge, so the triangles still tile the frame.
        moved = np.clip(ring + share * ring_motion, RING_MARGIN / 2 * size, (1 - RING_MARGIN / 2) * size - 1)
        dst = np.clip(control_points(driven, size, moved), 0, size - 1)
        folds = int(np.count_nonzero(signed_areas(dst, triangles) * rest <= 0))
        if folds == 0:
            return dst, triangles
        if best is None or folds < best[0]:
            best = (folds, dst)
    assert best is not None
    return best[1], Delaunay(best[1]).simplices.astype(np.int32)


def _triangle_affines(dst: np.ndarray, src: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(T, 3, 2) coefficients mapping [x, y, 1] of each destination triangle to source coordinates."""
    dst_h = np.concatenate([dst[triangles], np.ones((len(triangles), 3, 1), np.float32)], axis=2)
    return np.linalg.pinv(dst_h) @ src[triangles]


def _triangle_ids(dst: np.ndarray, triangles: np.ndarray, size: int, step: int) -> np.ndarray:
    """1 + the index of the destination triangle each pixel of a grid with spacing `step` falls in (0: none)."""
    small = -(-size // step)
    # cv2.resize puts small pixel i at full-resolution coordinate step * i + (step - 1) / 2.
    offset = (step - 1) / 2
    ids = np.zeros((small, small), np.int32)
    for index, triangle in enumerate(triangles):
        corners = (dst[triangle] - offset) / step
        cv2.fillConvexPoly(ids, np.round(corners * 16).astype(np.int32), index + 1, shift=4)
    return ids


def affine_determinants(coeffs: np.ndarray) -> np.ndarray:
    """(T,) Jacobian determinants of the (T, 3, 2) affine maps: source area / output area, <= 0 when flipped."""
    return coeffs[:, 0, 0] * coeffs[:, 1, 1] - coeffs[:, 1, 0] * coeffs[:, 0, 1]


class WarpGenerator(Generator):
    def prepare(self, images: list[np.ndarray], landmarks: list[np.ndarray]) -> dict:
        per_image = []
        for image, points in zip(images, landmarks, strict=True):
            ring, ring_weights = _ring(points, self.output_size)
            controls = control_points(points, self.output_size, ring)
            per_image.append({
                "controls": controls,
                "ring": ring,
                "ring_weights": ring_weights,
                "triangles": Delaunay(controls).simplices.astype(np.int32),
                "colours": face_colours(image, points),
            })
        return {"per_image": per_image}

    def generate(self, requests: list[GenerateRequest]) -> list[np.ndarray]:
        return [self._render(r) for r in requests]

    def _pick_source(self, request: GenerateRequest) -> int:
        """Few-shot: the target photo whose landmarks are nearest the driven ones (after alignment)."""
        if len(request.images) == 1:
            return 0
        errors = []
        for points in request.landmarks:
            matrix = geometry.similarity_transform(points, request.driven)
            errors.append(np.linalg.norm(geometry.apply(matrix, points) - request.driven))
        return int(np.argmin(errors))

    def area_ratio_maps(self, requests: list[GenerateRequest]) -> list[np.ndarray | None]:
        """Exact per-pixel determinant of the triangle's affine map each output pixel falls in (1 outside the
        triangles, where the map is the identity), at full resolution: evaluation only, never per live frame."""
        maps: list[np.ndarray | None] = []
        for request in requests:
            k, dst, triangles = self._driven_triangles(request)
            src = request.cache["per_image"][k]["controls"]
            determinants = affine_determinants(_triangle_affines(dst, src, triangles)).astype(np.float32)
            ids = _triangle_ids(dst, triangles, self.output_size, step=1)
            maps.append(np.concatenate([np.ones(1, np.float32), determinants])[ids])
        return maps

    def _driven_triangles(self, request: GenerateRequest) -> tuple[int, np.ndarray, np.ndarray]:
        """The source photo index, destination control points and triangles for this frame's driven landmarks."""
        assert request.driven is not None
        k = self._pick_source(request)
        cache = request.cache["per_image"][k]
        pose = geometry.similarity_transform(request.landmarks[k][STABLE_POINTS], request.driven[STABLE_POINTS])
        ring_motion = (geometry.apply(pose, cache["ring"]) - cache["ring"]) * cache["ring_weights"][:, None]
        dst, triangles = unfolded_controls(cache["controls"], request.driven, cache["ring"], ring_motion,
                                           cache["triangles"], self.output_size)
        return k, dst, triangles

    def _render(self, request: GenerateRequest) -> np.ndarray:
        assert request.driven is not None
        k, dst, triangles = self._driven_triangles(request)
        cache = request.cache["per_image"][k]
        map_x, map_y = self._sampling_map(dst, cache["controls"], triangles)
        out = cv2.remap(request.images[k], map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

        paint_mouth(out, request.driven, cache["colours"])
        paint_eyes(out, request.driven, cache["colours"])
        return out

    def _sampling_map(self, dst: np.ndarray, src: np.ndarray, triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where each output pixel samples the source: per-triangle affine maps, built at reduced resolution.

        The map is piecewise linear, so building it at 1/MAP_STEP resolution and resizing it bilinearly
        changes it only along triangle edges (sub-pixel), for ~MAP_STEP^2 less work.
        """
        ids = _triangle_ids(dst, triangles, self.output_size, MAP_STEP)
        small, offset = ids.shape[0], (MAP_STEP - 1) / 2
        coeffs = _triangle_affines(dst, src, triangles).astype(np.float32)
        ys, xs = np.mgrid[0:small, 0:small].astype(np.float32) * MAP_STEP + offset
        pixel = coeffs[np.maximum(ids - 1, 0)]
        map_xy = xs[..., None] * pixel[:, :, 0] + ys[..., None] * pixel[:, :, 1] + pixel[:, :, 2]
        uncovered = ids == 0
        map_xy[uncovered] = np.stack([xs, ys], axis=-1)[uncovered]
        full = cv2.resize(map_xy, (self.output_size, self.output_size), interpolation=cv2.INTER_LINEAR)
        return full[..., 0], full[..., 1]
