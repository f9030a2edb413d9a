"""What the mesh generator prepares once per target photo: its triangles, where each samples, the head ring.

Two layers of triangles cover the output, both piecewise-affine maps into the target photo:
- the face: the canonical FaceMesh triangulation on the target's own 468 vertices. Every triangle samples
  the photo where the photo shows it, so at rest the map is the photo's own coordinates (the avatar is the
  photo). A triangle the photo shows strongly foreshortened (the far cheek of a turned head) stretches its
  own texture when the head turns towards it: borrowing its mirror triangle instead pasted the other cheek's
  lighting in, a seam visible even at rest on 12 of the evaluation set's 19 photos;
- around it: the face oval, a ring around the head (hair, ears) and fixed points on the image border
  (shoulders, background), triangulated once. The ring follows the head's 3-D motion (all of it at the
  top, less towards the neck), the border stays.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import Delaunay

from models.facemesh.canonical import canonical_face
from models.mesh3d.transfer import IMAGE_AXES, MeshTransfer, TransferConfig

RING_POINTS = 20
RING_MARGIN = 0.05  # of the crop size: the ring keeps this far from the fixed border
BORDER_TICKS = 6
FEW_SHOT_GAIN = 0.25  # few-shot: another photo must see a triangle this much more frontally (cosine) to lend it
MIN_FACING = 0.05  # a source triangle seen more edge-on than this has no usable texture
FEW_SHOT_BELOW = 0.6  # few-shot: a triangle the first photo sees less frontally than this may use another photo
FACE_OVAL_HINT = np.array([10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400,
                           377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67,
                           109])  # the mesh's outline, for colour statistics of the face


@dataclass(frozen=True)
class MeshTemplate:
    image: np.ndarray  # (S, K * S, 3) uint8: the K target crops side by side (read-only), what the map samples
    size: int  # S, the output size
    mesh: np.ndarray  # (468, 3) the first photo's mesh in crop pixels: the avatar's rest geometry
    transfer: MeshTransfer
    face_triangles: np.ndarray  # (F, 3) canonical triangles
    front_sign: np.ndarray  # (F,) sign of a front-facing triangle's signed image area
    face_source: np.ndarray  # (F, 3, 2) atlas coordinates each face triangle's corners sample
    photo: np.ndarray  # (F,) which photo each face triangle's texture comes from (few-shot)
    usable: np.ndarray  # (F,) bool: the photo shows this triangle; if not, a flat colour
    oval: np.ndarray  # (V,) mesh vertex ids on the face outline
    ring: np.ndarray  # (R, 3) ring points in crop pixels, at the depth of the face outline
    ring_weights: np.ndarray  # (R,) share of the head motion each ring point follows
    border: np.ndarray  # (B, 2) fixed image-border points
    outer_triangles: np.ndarray  # (O, 3) indices into [oval, ring, border]
    outer_rest_sign: np.ndarray  # (O,) orientation of each outer triangle at rest

    @property
    def outer_source(self) -> np.ndarray:
        """(O, 3, 2) photo coordinates of the outer triangles' corners."""
        return self.outer_points(self.mesh[self.oval, :2], self.ring[:, :2])[self.outer_triangles]

    def outer_points(self, oval_xy: np.ndarray, ring_xy: np.ndarray) -> np.ndarray:
        return np.concatenate([oval_xy, ring_xy, self.border]).astype(np.float32)


def signed_areas(corners: np.ndarray) -> np.ndarray:
    """(..., 3, 2) triangle corners -> twice their signed areas (positive = counter-clockwise in x-right/y-up)."""
    a, b, c = corners[..., 0, :], corners[..., 1, :], corners[..., 2, :]
    return (b[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1]) - (b[..., 1] - a[..., 1]) * (c[..., 0] - a[..., 0])


def _boundary_loop(triangles: np.ndarray) -> np.ndarray:
    """The vertices of the mesh's outer boundary, in order (edges used by exactly one triangle)."""
    edges = Counter(tuple(sorted((int(t[i]), int(t[(i + 1) % 3])))) for t in triangles for i in range(3))
    neighbours: dict[int, list[int]] = {}
    for (a, b), count in edges.items():
        if count == 1:
            neighbours.setdefault(a, []).append(b)
            neighbours.setdefault(b, []).append(a)
    start = min(neighbours)
    loop, previous = [start], -1
    while True:
        step = next(n for n in neighbours[loop[-1]] if n != previous)
        if step == start:
            return np.array(loop, np.int32)
        previous = loop[-1]
        loop.append(step)


def triangle_facing(mesh: np.ndarray, triangles: np.ndarray, front_sign: np.ndarray) -> np.ndarray:
    """Cosine between each triangle's normal and the view direction (projected area / true area)."""
    corners = mesh[triangles]
    normal = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    return signed_areas(corners[..., :2]) * front_sign / np.maximum(np.linalg.norm(normal, axis=1), 1e-6)


def _ring(mesh: np.ndarray, oval: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Points on an ellipse around the head in the face's own frame, kept inside the crop."""
    outline = mesh[oval, :2]
    centre = outline.mean(axis=0)
    up = mesh[10, :2] - mesh[152, :2]  # chin -> top of the forehead
    height = np.linalg.norm(up)
    up_unit = up / max(height, 1e-6)
    right = np.array([-up_unit[1], up_unit[0]])
    if right @ (mesh[454, :2] - mesh[234, :2]) < 0:
        right = -right
    angles = np.linspace(0, 2 * np.pi, RING_POINTS, endpoint=False)
    ring = centre + np.outer(np.cos(angles), right * 0.95 * height) + np.outer(np.sin(angles), up_unit * 0.95 * height)
    margin = RING_MARGIN * size
    inside = np.clip(ring, margin, size - 1 - margin)
    # A point the crop cut off sits on hair or shoulders that run out of the photo: it stays put, since moving
    # it along the border would shear the hair at the photo's edge into a streak.
    pinned = np.any(np.abs(inside - ring) > 1e-3, axis=1)
    ring = inside
    keep: list[int] = []  # drop points that clipping stacked together (they would make slivers)
    for index, point in enumerate(ring):
        if all(np.linalg.norm(point - ring[k]) > 0.06 * size for k in keep):
            keep.append(index)
    weights = np.where(pinned[keep], 0.0, 0.6 + 0.4 * np.sin(angles[keep]))  # sin > 0: the upper half
    depth = np.full((len(keep), 1), float(mesh[oval, 2].mean()))
    return np.hstack([ring[keep], depth]).astype(np.float32), weights.astype(np.float32)


def ring_limits(size: int) -> tuple[float, float]:
    """How far a moving ring point may go: it must not reach the fixed border (that would fold)."""
    return RING_MARGIN / 2 * size, (1 - RING_MARGIN / 2) * size - 1


def _border(size: int) -> np.ndarray:
    ticks = np.linspace(0, size - 1, BORDER_TICKS)
    edges = [(t, 0) for t in ticks] + [(t, size - 1) for t in ticks]
    edges += [(0, t) for t in ticks[1:-1]] + [(size - 1, t) for t in ticks[1:-1]]
    return np.array(edges, np.float32)


def _inside(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    contour = polygon.astype(np.float32).reshape(-1, 1, 2)
    return np.array([cv2.pointPolygonTest(contour, (float(x), float(y)), False) > 0 for x, y in points])


def _face_texture(meshes: list[np.ndarray], triangles: np.ndarray, front_sign: np.ndarray,
                  canonical_corners: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where each face triangle takes its texture: (source corners in atlas pixels, photo index, usable).
    Photo k sits at x offset k * size in the atlas."""
    facing = np.stack([triangle_facing(mesh, triangles, front_sign) for mesh in meshes])  # (K, F)
    # Few-shot: a triangle the first photo shows foreshortened takes its texture from the photo that sees
    # it best; the first photo keeps what it shows well (fewer seams between photos).
    best = facing.argmax(axis=0)
    photo = np.where((facing[0] < FEW_SHOT_BELOW) & (facing.max(axis=0) > facing[0] + FEW_SHOT_GAIN), best, 0)
    seen = facing[photo, np.arange(len(triangles))]
    # A triangle no photo shows from the front (lips pressed together, the far side of a turned face) has no
    # texture of its own: a flat colour (below). At rest such a triangle lies behind nearer ones.
    usable = seen > MIN_FACING
    stacked = np.stack(meshes)[..., :2]  # (K, 468, 2)
    source = stacked[photo[:, None], triangles] + np.stack([photo * size, np.zeros_like(photo)], -1)[:, None]
    # The flat colour: a tiny front-facing copy of the canonical triangle at the centre (positive area, so
    # never a fold; the fold measure counts it as extreme).
    centre = source.mean(axis=1, keepdims=True)
    tiny = centre + 0.02 * (canonical_corners - canonical_corners.mean(axis=1, keepdims=True))
    return np.where(usable[:, None, None], source, tiny).astype(np.float32), photo, usable


def _atlas(images: list[np.ndarray], meshes: list[np.ndarray]) -> np.ndarray:
    """The photos side by side, each later one colour-matched to the first on the face (per-channel gain)."""
    face = [cv2.fillPoly(np.zeros(image.shape[:2], np.uint8), [np.round(mesh[FACE_OVAL_HINT, :2]).astype(np.int32)], 1)
            for image, mesh in zip(images, meshes, strict=True)]
    reference = images[0][face[0] > 0].reshape(-1, 3).astype(np.float32).mean(axis=0)
    matched = [images[0]]
    for image, mask in zip(images[1:], face[1:], strict=True):
        gain = reference / np.maximum(image[mask > 0].reshape(-1, 3).astype(np.float32).mean(axis=0), 1.0)
        matched.append(np.clip(image.astype(np.float32) * np.clip(gain, 0.5, 2.0), 0, 255).astype(np.uint8))
    atlas = np.concatenate(matched, axis=1)
    atlas.setflags(write=False)  # shared by every session that picks this target
    return atlas


def build_template(images: list[np.ndarray], meshes: list[np.ndarray], config: TransferConfig,
                   few_shot_texture: bool = True) -> MeshTemplate:
    """The template of a target from K >= 1 aligned photos and their meshes; the first photo is the pose the
    avatar starts from, the others (with few_shot_texture) lend texture where it is foreshortened."""
    if not few_shot_texture:
        images, meshes = images[:1], meshes[:1]
    face = canonical_face()
    triangles = face.triangles
    canonical_corners = (face.vertices * IMAGE_AXES)[triangles][..., :2]
    front_sign = np.sign(signed_areas(canonical_corners)).astype(np.float32)
    meshes = [np.asarray(mesh, np.float32) for mesh in meshes]
    mesh = meshes[0]
    size = images[0].shape[0]
    face_source, photo, usable = _face_texture(meshes, triangles, front_sign, canonical_corners, size)
    oval = _boundary_loop(triangles)
    ring, ring_weights = _ring(mesh, oval, size)
    border = _border(size)
    points = np.concatenate([mesh[oval, :2], ring[:, :2], border])
    outer = Delaunay(points).simplices.astype(np.int32)
    centroids = points[outer].mean(axis=1)
    outer = outer[~_inside(centroids, mesh[oval, :2])]  # the face layer covers the inside of the oval
    rest_sign = np.sign(signed_areas(points[outer])).astype(np.float32)
    return MeshTemplate(_atlas(images, meshes), size, mesh, MeshTransfer(mesh, config), triangles, front_sign,
                        face_source, photo, usable, oval, ring, ring_weights, border, outer, rest_sign)
