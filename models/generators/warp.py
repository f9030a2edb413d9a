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
from models.face_metrics import LEFT_EYE, RIGHT_EYE, eye_distance, eye_openness, mouth_opening
from models.generators.base import GenerateRequest, Generator
from models.geometry import STABLE_POINTS

INNER_MOUTH = np.arange(60, 68)
UPPER_INNER_LIP = np.array([60, 61, 62, 63, 64])
RING_POINTS = 16
MAP_STEP = 2  # the sampling map is built at half resolution (see _sampling_map)
CAVITY_RGB = np.array([70, 22, 26], np.float32)
TEETH_RGB = np.array([238, 230, 214], np.float32)


def _forehead(landmarks: np.ndarray) -> np.ndarray:
    up = landmarks[27] - landmarks[8]  # chin -> nose bridge: "up" in the face's own frame
    return landmarks[17:27] + 0.45 * up


def _ring(landmarks: np.ndarray) -> np.ndarray:
    """Points on an ellipse around the head, in the face's frame."""
    centre = landmarks[STABLE_POINTS].mean(axis=0)
    up = landmarks[27] - landmarks[8]
    height = np.linalg.norm(up)
    up_unit = up / max(height, 1e-6)
    right = np.array([-up_unit[1], up_unit[0]])
    if right @ (landmarks[16] - landmarks[0]) < 0:
        right = -right
    angles = np.linspace(0, 2 * np.pi, RING_POINTS, endpoint=False)
    return centre + np.outer(np.cos(angles), right * 1.25 * height) + np.outer(np.sin(angles), up_unit * 1.45 * height)


def _border(size: int) -> np.ndarray:
    ticks = np.linspace(0, size - 1, 5)
    edges = [(t, 0) for t in ticks] + [(t, size - 1) for t in ticks] + [(0, t) for t in ticks[1:-1]]
    edges += [(size - 1, t) for t in ticks[1:-1]]
    return np.array(edges, np.float32)


def control_points(landmarks: np.ndarray, size: int, ring: np.ndarray) -> np.ndarray:
    return np.concatenate([landmarks, _forehead(landmarks), ring, _border(size)]).astype(np.float32)


def _triangle_affines(dst: np.ndarray, src: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(T, 3, 2) coefficients mapping [x, y, 1] of each destination triangle to source coordinates."""
    dst_h = np.concatenate([dst[triangles], np.ones((len(triangles), 3, 1), np.float32)], axis=2)
    return np.linalg.pinv(dst_h) @ src[triangles]


def _soft_mask(shape: tuple[int, int], polygon: np.ndarray, blur: int) -> np.ndarray:
    mask = np.zeros(shape, np.float32)
    cv2.fillPoly(mask, [np.round(polygon * 16).astype(np.int32)], 1.0, lineType=cv2.LINE_AA, shift=4)
    return cv2.GaussianBlur(mask, (0, 0), blur) if blur > 0 else mask


class WarpGenerator(Generator):
    def prepare(self, images: list[np.ndarray], landmarks: list[np.ndarray]) -> dict:
        per_image = []
        for image, points in zip(images, landmarks, strict=True):
            ring = _ring(points)
            # Ring points outside the crop would fold against the fixed border anchors: keep those inside.
            margin = 0.04 * self.output_size
            ring = ring[np.all((ring > margin) & (ring < self.output_size - 1 - margin), axis=1)]
            controls = control_points(points, self.output_size, ring)
            per_image.append({
                "controls": controls,
                "ring": ring,
                "triangles": Delaunay(controls).simplices.astype(np.int32),
                "mouth_gap": mouth_opening(points),
                "eye_open": (eye_openness(points, LEFT_EYE), eye_openness(points, RIGHT_EYE)),
                "skin": image[np.clip(points[[29, 30]].astype(int)[:, 1], 0, self.output_size - 1),
                              np.clip(points[[29, 30]].astype(int)[:, 0], 0, self.output_size - 1)].mean(0),
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

    def _render(self, request: GenerateRequest) -> np.ndarray:
        assert request.driven is not None
        k = self._pick_source(request)
        cache = request.cache["per_image"][k]
        source, source_points = request.images[k], request.landmarks[k]
        size = self.output_size
        pose = geometry.similarity_transform(source_points[STABLE_POINTS], request.driven[STABLE_POINTS])
        dst = control_points(request.driven, size, geometry.apply(pose, cache["ring"]))
        triangles = cache["triangles"]

        map_x, map_y = self._sampling_map(dst, cache["controls"], triangles)
        out = cv2.remap(source, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

        self._paint_mouth(out, request.driven, cache["mouth_gap"])
        self._paint_eyes(out, request.driven, cache)
        return out

    def _sampling_map(self, dst: np.ndarray, src: np.ndarray, triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where each output pixel samples the source: per-triangle affine maps, built at reduced resolution.

        The map is piecewise linear, so building it at 1/MAP_STEP resolution and resizing it bilinearly
        changes it only along triangle edges (sub-pixel), for ~MAP_STEP^2 less work.
        """
        small = -(-self.output_size // MAP_STEP)
        # cv2.resize puts small pixel i at full-resolution coordinate MAP_STEP * i + (MAP_STEP - 1) / 2.
        offset = (MAP_STEP - 1) / 2
        ids = np.zeros((small, small), np.int32)
        for index, triangle in enumerate(triangles):
            corners = (dst[triangle] - offset) / MAP_STEP
            cv2.fillConvexPoly(ids, np.round(corners * 16).astype(np.int32), index + 1, shift=4)
        coeffs = _triangle_affines(dst, src, triangles).astype(np.float32)
        ys, xs = np.mgrid[0:small, 0:small].astype(np.float32) * MAP_STEP + offset
        pixel = coeffs[np.maximum(ids - 1, 0)]
        map_xy = xs[..., None] * pixel[:, :, 0] + ys[..., None] * pixel[:, :, 1] + pixel[:, :, 2]
        uncovered = ids == 0
        map_xy[uncovered] = np.stack([xs, ys], axis=-1)[uncovered]
        full = cv2.resize(map_xy, (self.output_size, self.output_size), interpolation=cv2.INTER_LINEAR)
        return full[..., 0], full[..., 1]

    def _paint_mouth(self, image: np.ndarray, driven: np.ndarray, target_gap: float) -> None:
        opening = mouth_opening(driven) - target_gap
        if opening <= 0.02:
            return
        strength = min(1.0, (opening - 0.02) / 0.08)
        inner = driven[INNER_MOUTH]
        shape = image.shape[:2]
        blur = max(0.6, 0.01 * self.output_size)
        cavity = _soft_mask(shape, inner, blur) * strength
        # Upper teeth: a band under the upper inner lip, inside the cavity.
        gap_px = mouth_opening(driven) * eye_distance(driven)
        teeth = np.zeros(shape, np.float32)
        thickness = max(1, round(float(0.35 * gap_px)))
        cv2.polylines(teeth, [np.round(driven[UPPER_INNER_LIP]).astype(np.int32)], False, 1.0, thickness)
        teeth = cv2.GaussianBlur(teeth * (cavity > 0.5), (0, 0), 0.6 * blur) * 0.95 * strength
        colour = image.astype(np.float32)
        colour = colour * (1 - cavity[..., None]) + CAVITY_RGB * cavity[..., None]
        colour = colour * (1 - teeth[..., None]) + TEETH_RGB * teeth[..., None]
        image[:] = np.clip(colour, 0, 255).astype(np.uint8)

    def _paint_eyes(self, image: np.ndarray, driven: np.ndarray, cache: dict) -> None:
        for eye, target_open in zip((LEFT_EYE, RIGHT_EYE), cache["eye_open"], strict=True):
            closed = 1.0 - eye_openness(driven, eye) / max(target_open, 1e-6)
            if closed <= 0.35:
                continue
            strength = min(1.0, (closed - 0.35) / 0.4)
            centre = driven[eye].mean(axis=0)
            width = np.linalg.norm(driven[eye[0]] - driven[eye[3]])
            polygon = (driven[eye] - centre) * np.array([1.15, 1.0]) + centre
            polygon[[1, 2, 4, 5], 1] = centre[1] + np.array([-1, -1, 1, 1]) * 0.18 * width
            mask = _soft_mask(image.shape[:2], polygon, max(0.6, 0.08 * width)) * strength
            lid = image[int(np.clip(centre[1] - 0.45 * width, 0, image.shape[0] - 1)),
                        int(np.clip(centre[0], 0, image.shape[1] - 1))].astype(np.float32)
            lid = 0.5 * lid + 0.5 * cache["skin"]
            blended = image.astype(np.float32) * (1 - mask[..., None]) + lid * mask[..., None]
            # A lash line where the lids meet.
            cv2.line(blended, tuple(np.round(driven[eye[0]]).astype(int)), tuple(np.round(driven[eye[3]]).astype(int)),
                     (lid * 0.45).tolist(), 1, cv2.LINE_AA)
            image[:] = np.clip(blended, 0, 255).astype(np.uint8)
