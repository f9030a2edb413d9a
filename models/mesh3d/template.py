"""What the mesh generator prepares once per target photo: its triangles, where each samples, the head ring.

Two layers of triangles cover the output, both piecewise-affine maps into the target photo:
- the face: the canonical FaceMesh triangulation on the target's own 468 vertices. A triangle that the
  photo shows strongly foreshortened (the far cheek of a turned head) samples its mirror triangle instead,
  so a head that turns towards that side shows a mirrored real cheek, not a smear;
- around it: the face oval, a ring around the head (hair, ears) and fixed points on the image border
  (shoulders, background), triangulated once. The ring follows the head's 3-D motion (all of it at the
  top, less towards the neck), the border stays.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
from scipy.spatial import Delaunay

from models.facemesh.canonical import canonical_face
from models.mesh3d.transfer import IMAGE_AXES, MeshTransfer, TransferConfig

RING_POINTS = 20
RING_MARGIN = 0.05  # of the crop size: the ring keeps this far from the fixed border
BORDER_TICKS = 6
MIRROR_BELOW = 0.35  # a triangle facing the photo's camera less than this (cosine) may borrow its mirror's
MIRROR_GAIN = 0.25  # ... when the mirror triangle faces the camera this much better
MIN_FACING = 0.05  # a source triangle seen more edge-on than this has no usable texture


@dataclass(frozen=True)
class MeshTemplate:
    image: np.ndarray  # (S, S, 3) uint8 target crop (read-only)
    mesh: np.ndarray  # (468, 3) target mesh in crop pixels
    transfer: MeshTransfer
    face_triangles: np.ndarray  # (F, 3) canonical triangles
    front_sign: np.ndarray  # (F,) sign of a front-facing triangle's signed image area
    face_source: np.ndarray  # (F, 3, 2) photo coordinates each face triangle's corners sample
    mirrored: np.ndarray  # (F,) bool: samples its mirror triangle (a reflection, not a fold)
    usable: np.ndarray  # (F,) bool: the photo shows this triangle (or its mirror); if not, a flat colour
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


def _triangle_mirror(triangles: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    """For each triangle, the index of its mirror image (itself on the midline; -1 if none)."""
    lookup = {tuple(sorted(t)): i for i, t in enumerate(triangles.tolist())}
    return np.array([lookup.get(tuple(sorted(mirror[t].tolist())), -1) for t in triangles], np.int32)


def _facing(mesh: np.ndarray, triangles: np.ndarray, front_sign: np.ndarray) -> np.ndarray:
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
    ring = np.clip(ring, margin, size - 1 - margin)
    keep: list[int] = []  # drop points that clipping stacked together (they would make slivers)
    for index, point in enumerate(ring):
        if all(np.linalg.norm(point - ring[k]) > 0.06 * size for k in keep):
            keep.append(index)
    weights = 0.6 + 0.4 * np.sin(angles[keep])  # sin > 0: the upper half, which moves with the head
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
    import cv2

    contour = polygon.astype(np.float32).reshape(-1, 1, 2)
    return np.array([cv2.pointPolygonTest(contour, (float(x), float(y)), False) > 0 for x, y in points])


def build_template(image: np.ndarray, mesh: np.ndarray, config: TransferConfig) -> MeshTemplate:
    face = canonical_face()
    triangles = face.triangles
    canonical_corners = (face.vertices * IMAGE_AXES)[triangles][..., :2]
    front_sign = np.sign(signed_areas(canonical_corners)).astype(np.float32)
    mesh = np.asarray(mesh, np.float32)
    facing = _facing(mesh, triangles, front_sign)
    partner = _triangle_mirror(triangles, face.mirror)
    better = np.where(partner >= 0, facing[np.maximum(partner, 0)], -1.0)
    mirrored = (facing < MIRROR_BELOW) & (better > facing + MIRROR_GAIN)
    # A triangle the photo shows from behind (lips pressed together, the far side of a turned face) has
    # no texture of its own: its mirror's if that one is seen, else it is never painted (it would fold).
    usable = np.where(mirrored, better, facing) > MIN_FACING
    source_vertices = np.where(mirrored[:, None], face.mirror[triangles], triangles)
    face_source = mesh[source_vertices][..., :2]
    # Unusable ones take a flat colour: a tiny front-facing copy of the canonical triangle at their centre
    # (positive area, so never a fold; the fold measure counts them as extreme).
    centre = face_source.mean(axis=1, keepdims=True)
    tiny = centre + 0.02 * (canonical_corners - canonical_corners.mean(axis=1, keepdims=True))
    face_source = np.where(usable[:, None, None], face_source, tiny)

    size = image.shape[0]
    oval = _boundary_loop(triangles)
    ring, ring_weights = _ring(mesh, oval, size)
    border = _border(size)
    points = np.concatenate([mesh[oval, :2], ring[:, :2], border])
    outer = Delaunay(points).simplices.astype(np.int32)
    centroids = points[outer].mean(axis=1)
    outer = outer[~_inside(centroids, mesh[oval, :2])]  # the face layer covers the inside of the oval
    rest_sign = np.sign(signed_areas(points[outer])).astype(np.float32)
    readonly = image.copy()
    readonly.setflags(write=False)
    return MeshTemplate(readonly, mesh, MeshTransfer(mesh, config), triangles, front_sign,
                        face_source.astype(np.float32), mirrored, usable, oval, ring, ring_weights, border, outer,
                        rest_sign)
