"""What the mesh generator prepares once per target photo: its triangles, where each samples, the outer layer.

Two layers of triangles cover the output, both piecewise-affine maps into the target photo:
- the face: the canonical FaceMesh triangulation on the target's own 468 vertices. Every triangle samples
  the photo where the photo shows it, so at rest the map is the photo's own coordinates (the avatar is the
  photo). A triangle the photo shows strongly foreshortened (the far cheek of a turned head) stretches its
  own texture when the head turns towards it: borrowing its mirror triangle instead pasted the other cheek's
  lighting in, a seam visible even at rest on 12 of the evaluation set's 19 photos;
- around it (hair, ears, neck, shoulders, background): the face oval, a lattice of points over the rest of
  the crop and fixed points on its border, triangulated once. The lattice moves as one smooth field, so hair
  bends with the head instead of shearing along a line: each point follows the head's rigid 3-D motion by
  its `head_share` (1 at the face outline, 0 at the crop's border: harmonic, the smoothest such share),
  plus the harmonic continuation of what the outline does beyond that motion (a jaw opening). An earlier
  ring of 20 points, most pinned where the crop cut them off, sheared the hair between a moving point and
  its pinned neighbour into a visible cut on big turns.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import Delaunay

from models.facemesh.canonical import canonical_face
from models.mesh3d.transfer import EYE_RINGS, IMAGE_AXES, INNER_LIPS, MeshTransfer, TransferConfig

OUTER_GRID = 12  # lattice cells per side of the crop for the outer layer
OUTER_CLEARANCE = 0.4  # of a lattice cell: a lattice point this close to the face outline is dropped (a sliver)
OUTER_MARGIN = 0.025  # of the crop size: a moving lattice point stays this far inside the fixed border
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
    # The face triangles inside each eye's lids (EYELIDS order) and inside the inner lips whose texture is the
    # first photo's (render re-sources them as lids close and the mouth opens; a few-shot loan stays as it is).
    eye_openings: tuple[np.ndarray, np.ndarray]
    mouth_opening: np.ndarray
    shows_teeth: bool  # the photo's teeth are shown unstretched as the mouth opens (render._mouth_sources)
    oval: np.ndarray  # (V,) mesh vertex ids on the face outline
    lattice: np.ndarray  # (P, 3) the outer layer's other points in crop pixels (at the outline's mean depth)
    on_border: np.ndarray  # (P,) bool: fixed on the crop's border
    head_share: np.ndarray  # (P,) share of the head's rigid motion each follows: 1 at the outline, 0 on the border
    outline_to_lattice: np.ndarray  # (P, V) harmonic continuation of the outline's own motion (0 rows: border)
    outer_triangles: np.ndarray  # (O, 3) indices into [oval, lattice]
    outer_rest_sign: np.ndarray  # (O,) orientation of each outer triangle at rest

    @property
    def outer_source(self) -> np.ndarray:
        """(O, 3, 2) photo coordinates of the outer triangles' corners."""
        return self.outer_points(self.mesh[self.oval, :2], self.lattice[:, :2])[self.outer_triangles]

    def outer_points(self, oval_xy: np.ndarray, lattice_xy: np.ndarray) -> np.ndarray:
        return np.concatenate([oval_xy, lattice_xy]).astype(np.float32)


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


def lattice_limits(size: int) -> tuple[float, float]:
    """How far a moving lattice point may go: it must not reach the fixed border (that would fold)."""
    return OUTER_MARGIN * size, (1 - OUTER_MARGIN) * size - 1


def _lattice(outline: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The outer layer's points outside the face outline: (points (P, 2), on the border (P,) bool)."""
    ticks = np.linspace(0, size - 1, OUTER_GRID + 1)
    xs, ys = np.meshgrid(ticks, ticks)
    points = np.stack([xs.ravel(), ys.ravel()], axis=1)
    on_border = (np.isin(points, ticks[[0, -1]])).any(axis=1)
    contour = outline.astype(np.float32).reshape(-1, 1, 2)
    # Signed distance to the outline: positive inside. Lattice points inside or hugging it are dropped.
    distance = np.array([cv2.pointPolygonTest(contour, (float(x), float(y)), True) for x, y in points])
    keep = on_border | (distance < -OUTER_CLEARANCE * (ticks[1] - ticks[0]))
    return points[keep].astype(np.float32), on_border[keep]


def _harmonic(triangles: np.ndarray, count: int, known: np.ndarray) -> np.ndarray:
    """(unknown, known) weights: each unknown vertex as the average of its neighbours in the triangulation
    (the graph Laplacian), solved for the values at the `known` vertices. Smoothest continuation: no kinks."""
    adjacency = np.zeros((count, count))
    for a, b in ((0, 1), (1, 2), (2, 0)):
        adjacency[triangles[:, a], triangles[:, b]] = 1
        adjacency[triangles[:, b], triangles[:, a]] = 1
    unknown = np.setdiff1d(np.arange(count), known)
    laplacian = np.diag(adjacency.sum(axis=1)) - adjacency
    return np.linalg.solve(laplacian[np.ix_(unknown, unknown)], adjacency[np.ix_(unknown, known)])


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


def _inside_ring(triangles: np.ndarray, ring: tuple[int, ...], own: np.ndarray) -> np.ndarray:
    """The triangles whose corners all lie on a vertex ring (the mesh fills the eye and mouth openings with them),
    of those marked `own`."""
    return np.flatnonzero(np.isin(triangles, np.array(ring)).all(axis=1) & own)


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
                   few_shot_texture: bool = True, shows_teeth: bool = False) -> MeshTemplate:
    """The template of a target from K >= 1 aligned photos and their meshes; the first photo is the pose the
    avatar starts from, the others (with few_shot_texture) lend texture where it is foreshortened. `shows_teeth`:
    the first photo shows its teeth, which an opening mouth then shows at their own size."""
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
    own = (photo == 0) & usable  # the first photo's texture
    oval = _boundary_loop(triangles)
    lattice, on_border = _lattice(mesh[oval, :2], size)
    points = np.concatenate([mesh[oval, :2], lattice])
    outer = Delaunay(points).simplices.astype(np.int32)
    centroids = points[outer].mean(axis=1)
    outer = outer[~_inside(centroids, mesh[oval, :2])]  # the face layer covers the inside of the oval
    rest_sign = np.sign(signed_areas(points[outer])).astype(np.float32)
    fixed = np.concatenate([np.arange(len(oval)), len(oval) + np.flatnonzero(on_border)])
    continuation = _harmonic(outer, len(points), fixed)  # (moving lattice points, outline + border)
    outline_to_lattice = np.zeros((len(lattice), len(oval)))
    outline_to_lattice[~on_border] = continuation[:, :len(oval)]
    head_share = outline_to_lattice.sum(axis=1)  # harmonic with 1 on the outline and 0 on the border
    depth = np.full((len(lattice), 1), float(mesh[oval, 2].mean()))
    lattice = np.hstack([lattice, depth]).astype(np.float32)
    return MeshTemplate(_atlas(images, meshes), size, mesh, MeshTransfer(mesh, config), triangles, front_sign,
                        face_source, photo, usable, tuple(_inside_ring(triangles, ring, own) for ring in EYE_RINGS),
                        _inside_ring(triangles, INNER_LIPS, own), shows_teeth, oval, lattice, on_border,
                        head_share.astype(np.float32), outline_to_lattice.astype(np.float32), outer, rest_sign)
