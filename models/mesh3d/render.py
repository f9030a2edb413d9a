"""Per frame: lay out the driven triangles and turn them into one map that samples the target photo.

Every output pixel belongs to the nearest triangle that covers it: face triangles facing the camera, in
depth order (back-facing ones do not paint), over the outer layer (hair, ears, background). Inside a
triangle the map is that triangle's affine map into the photo. Two ways to build the same map:
- `sampling_map_cpu`: OpenCV fills the triangles far-to-near into an id image (painter's algorithm),
  one face at a time (fastest on a small CPU);
- `sampling_map_torch`: a batched rasteriser (barycentric inside test, nearest triangle wins) for all
  faces of a batch at once, on the GPU when there is one.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from models.mesh3d.template import MeshTemplate, lattice_limits, signed_areas
from models.mesh3d.transfer import (
    EYE_RINGS,
    EYELIDS,
    INNER_LIP_PAIRS,
    INNER_LIPS,
    UPPER_LID_SHARE,
    DrivenMesh,
    eye_openness,
)

HEAD_SHARES = (1.0, 0.6, 0.3, 0.0)  # head motion the outer layer follows, tried until none of it flips
MAP_STEP = 2  # single-photo maps are built at half resolution (see sampling_map_cpu)
MEND_SLOPE = 2.0  # px of photo per px of output: a steeper step in the map is an occlusion edge, mended to this
MEND_WIDTHS = (3, 5, 9)  # map pixels: ever wider ramps, until no step is steeper than MEND_SLOPE
OPENINGS = (*EYE_RINGS, INNER_LIPS)  # a closed lid or parted lips: a real line, never mended
MAX_LID_SHIFT = 0.9  # of a closing eye's opening: its photo source keeps a sliver, never flat (a fold)
MIN_AREA = 1e-3  # px^2 (twice the area): thinner triangles are not painted
OUTER_DEPTH = 1e9  # outer-layer triangles lie behind every face triangle


@dataclass(frozen=True)
class Layout:
    """All triangles of one output frame: outer layer first, then the face."""

    dst: np.ndarray  # (N, 3, 2) output pixels
    src: np.ndarray  # (N, 3, 2) photo pixels
    depth: np.ndarray  # (N,) painting key: smaller is nearer; inf = not painted
    map_step: int  # the map is built at 1/map_step resolution (see sampling_map_cpu)
    openings: tuple[np.ndarray, ...] = ()  # (K, 2) output-pixel outlines of the eyes and the mouth (OPENINGS)

    def painting_order(self) -> np.ndarray:
        """Painted triangles, far to near."""
        painted = np.flatnonzero(np.isfinite(self.depth))
        return painted[np.argsort(-self.depth[painted], kind="stable")]


def layout(template: MeshTemplate, driven: DrivenMesh) -> Layout:
    points = driven.points
    rest_outline = template.mesh[template.oval]
    outline_motion = (points[template.oval] - rest_outline)[:, :2]
    rigid_outline = (driven.motion.apply(rest_outline) - rest_outline)[:, :2]
    rigid_lattice = (driven.motion.apply(template.lattice) - template.lattice)[:, :2] * template.head_share[:, None]
    outer_src = template.outer_source
    rest = template.lattice[:, :2]
    for share in HEAD_SHARES:
        # The head's rigid motion (fading out towards the border) plus the smooth continuation of what the
        # outline does beyond it; lattice points stay off the fixed border (crossing it folds).
        motion = share * rigid_lattice + template.outline_to_lattice @ (outline_motion - share * rigid_outline)
        lattice_xy = np.where(template.on_border[:, None], rest, np.clip(rest + motion, *lattice_limits(template.size)))
        outer_dst = template.outer_points(points[template.oval, :2], lattice_xy)[template.outer_triangles]
        flipped = signed_areas(outer_dst) * template.outer_rest_sign <= 0
        if not flipped.any():
            break
    face_dst = points[template.face_triangles][..., :2]
    face_src = _mouth_sources(template, points, _eyeball_sources(template, points))
    facing = signed_areas(face_dst) * template.front_sign > MIN_AREA
    face_depth = np.where(facing, points[template.face_triangles][..., 2].mean(axis=1), np.inf)
    outer_depth = np.where(flipped, np.inf, OUTER_DEPTH)  # a flipped outer triangle would fold the map
    return Layout(np.concatenate([outer_dst, face_dst]).astype(np.float32),
                  np.concatenate([outer_src, face_src]).astype(np.float32),
                  np.concatenate([outer_depth, face_depth]),
                  # Few-shot maps jump between photos of the atlas at texture seams: resizing a coarse map
                  # would sample between photos there, so they are built at full resolution.
                  1 if template.image.shape[1] > template.size else MAP_STEP,
                  tuple(points[list(ring), :2].astype(np.float32) for ring in OPENINGS))


def _eyeball_sources(template: MeshTemplate, points: np.ndarray) -> np.ndarray:
    """The face triangles' photo corners, those of a closing eye's opening moved to the eyeball its lids still
    leave uncovered: the lid skin above stretches down over the eye (it is the mesh's own, so it keeps its
    shading) and the opening shows the eye unsquashed, down to a lash line where the lids meet. Without this the
    whole eye was squashed into a grey line under the lid."""
    closing = 1.0 - eye_openness(points) / np.maximum(eye_openness(template.mesh), 1e-6)
    if (closing <= 0.0).all():
        return template.face_source  # open or wider: the eye as the photo shows it
    vertex_source = template.mesh[:, :2].copy()
    for (upper, lower), amount in zip(EYELIDS, np.clip(closing, 0, MAX_LID_SHIFT), strict=True):
        up, low = list(upper), list(lower)
        gap = vertex_source[low] - vertex_source[up]
        vertex_source[up] += UPPER_LID_SHARE * amount * gap
        vertex_source[low] -= (1 - UPPER_LID_SHARE) * amount * gap
    return _resourced(template, template.face_source, np.concatenate(template.eye_openings), vertex_source)


def _resourced(template: MeshTemplate, source: np.ndarray, triangles: np.ndarray, vertex_source: np.ndarray
               ) -> np.ndarray:
    """A copy of `source` whose `triangles` take their corners from `vertex_source` (photo pixels per vertex)."""
    source = source.copy()
    source[triangles] = vertex_source[template.face_triangles[triangles]]
    return source


def _mouth_sources(template: MeshTemplate, points: np.ndarray, source: np.ndarray) -> np.ndarray:
    """`source` with the mouth opening's triangles sampling a photo that shows teeth at its own size: the lower
    lip's corners of these triangles sample where the upper lip's motion (a similarity fitted on the upper inner
    lip, output -> photo) takes them, instead of the photo's lower lip, which stretched the teeth into long
    stripes. The photo's upper teeth then stay under the upper lip at their size; below them is the painted
    cavity (models/generators/paint.py)."""
    if not template.shows_teeth:
        return source  # nothing but lip skin to show: the painted mouth covers the whole opening
    upper, lower = (list(side) for side in zip(*INNER_LIP_PAIRS, strict=True))
    rest_gap = np.linalg.norm(template.mesh[lower, :2] - template.mesh[upper, :2], axis=1)
    upper_motion, _ = cv2.estimateAffinePartial2D(points[upper, :2].astype(np.float32),
                                                  template.mesh[upper, :2].astype(np.float32))
    if upper_motion is None:
        return source
    follows = points[lower, :2] @ upper_motion[:, :2].T + upper_motion[:, 2]
    if (np.linalg.norm(follows - template.mesh[upper, :2], axis=1) <= rest_gap).all():
        return source  # open no wider than the photo: its own mouth, as it is
    vertex_source = template.mesh[:, :2].copy()
    vertex_source[lower] = follows
    return _resourced(template, source, template.mouth_opening, vertex_source)


def affine_coefficients(dst: np.ndarray, src: np.ndarray) -> np.ndarray:
    """(N, 3, 2): [x, y, 1] of a point in each destination triangle -> its source coordinates.

    Solved in closed form (the inverse of [[x, y, 1]] per corner is its adjugate over twice the triangle's signed
    area): the same numbers as a batched np.linalg.inv, ~4x cheaper for the ~900 triangles of a frame."""
    d = dst.astype(np.float64)
    (x0, y0), (x1, y1), (x2, y2) = d[:, 0].T, d[:, 1].T, d[:, 2].T
    det = x0 * (y1 - y2) + x1 * (y2 - y0) + x2 * (y0 - y1)
    degenerate = np.abs(det) < 1e-9  # never painted (too thin): the identity keeps the table finite
    det = np.where(degenerate, 1.0, det)
    # Rows: coefficients of x, of y and the constant; columns: the three corners (adjugate of the corner matrix).
    adjugate = np.stack([np.stack([y1 - y2, y2 - y0, y0 - y1], -1),
                         np.stack([x2 - x1, x0 - x2, x1 - x0], -1),
                         np.stack([x1 * y2 - x2 * y1, x2 * y0 - x0 * y2, x0 * y1 - x1 * y0], -1)], 1)
    inverse = adjugate / det[:, None, None]
    inverse[degenerate] = np.eye(3)
    return (inverse @ src.astype(np.float64)).astype(np.float32)


def triangle_ids_cpu(layout_: Layout, size: int, step: int = 1) -> np.ndarray:
    """(size/step, size/step) int32: 1 + the triangle painted at each pixel, 0 where none is.

    With step > 1 the id image is coarser: its pixel i lies at full-resolution coordinate
    step * i + (step - 1) / 2 (where cv2.resize puts it)."""
    small = -(-size // step)
    ids = np.zeros((small, small), np.int32)
    order = layout_.painting_order()
    fixed = np.round((layout_.dst[order] - (step - 1) / 2) / step * 16).astype(np.int32)  # 4 fractional bits
    for polygon, value in zip(fixed, (order + 1).tolist(), strict=True):  # one OpenCV call per triangle
        cv2.fillConvexPoly(ids, polygon, value, lineType=cv2.LINE_8, shift=4)
    return ids


def _pixel_grid(shape: tuple[int, int], step: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    return xs * step + (step - 1) / 2, ys * step + (step - 1) / 2


def source_bounds(src: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per triangle, the box its source corners span, 1 px wider: a pixel of a sliver triangle that the
    rasteriser paints although its centre lies outside would otherwise extrapolate far off (a stray dot)."""
    return src.min(axis=1) - 1.0, src.max(axis=1) + 1.0


def map_from_ids(ids: np.ndarray, coefficients: np.ndarray, bounds: tuple[np.ndarray, np.ndarray],
                 step: int = 1) -> np.ndarray:
    """Source coordinates (H, W, 2) at the id image's pixels; the identity where nothing is painted."""
    xs, ys = _pixel_grid(ids.shape, step)
    # One table, one gather: per id [x->sx, x->sy, y->sx, y->sy, 1->sx, 1->sy, low x, low y, high x, high y].
    table = np.empty((len(coefficients) + 1, 10), np.float32)
    table[0] = (1, 0, 0, 1, 0, 0, -np.inf, -np.inf, np.inf, np.inf)  # id 0 = uncovered: the photo stays put
    table[1:, :6] = coefficients.reshape(-1, 6)
    table[1:, 6:8], table[1:, 8:] = bounds
    chosen = table[ids]
    mapped = np.empty((*ids.shape, 2), np.float32)
    mapped[..., 0] = xs * chosen[..., 0] + ys * chosen[..., 2] + chosen[..., 4]
    mapped[..., 1] = xs * chosen[..., 1] + ys * chosen[..., 3] + chosen[..., 5]
    return np.clip(mapped, chosen[..., 6:8], chosen[..., 8:], out=mapped)


def area_from_ids(ids: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """The map's local area ratio (Jacobian determinant) per pixel."""
    linear = coefficients[:, :2, :]
    determinant = linear[:, 0, 0] * linear[:, 1, 1] - linear[:, 0, 1] * linear[:, 1, 0]
    return np.concatenate([np.ones(1, np.float32), determinant.astype(np.float32)])[ids]


def sampling_map_cpu(layout_: Layout, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The (size, size, 2) sampling map and (size, size) area ratios of one frame, with OpenCV.

    Built at 1/step resolution and resized: the map is affine inside each triangle, so this changes it
    only along triangle edges (sub-pixel) for ~step^2 less work."""
    step = layout_.map_step
    ids = triangle_ids_cpu(layout_, size, step)
    coefficients = affine_coefficients(layout_.dst, layout_.src)
    small = mend_occlusions(map_from_ids(ids, coefficients, source_bounds(layout_.src), step), step, size,
                            openings_mask(layout_, ids.shape))
    full = cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR) if step > 1 else small
    area = area_from_ids(ids, coefficients)
    if step > 1:
        area = cv2.resize(area, (size, size), interpolation=cv2.INTER_NEAREST)
    return full, area


def openings_mask(layout_: Layout, shape: tuple[int, int], step: int | None = None) -> np.ndarray:
    """(H, W) bool at 1/step resolution (default the map's): inside an eye's or the mouth's opening, one pixel
    wider."""
    step = layout_.map_step if step is None else step
    mask = np.zeros(shape, np.uint8)
    outlines = [np.round((outline - (step - 1) / 2) / step * 16).astype(np.int32) for outline in layout_.openings]
    cv2.fillPoly(mask, outlines, 1, lineType=cv2.LINE_8, shift=4)
    return cv2.dilate(mask, np.ones((3, 3), np.uint8)).astype(bool)


def _steps(map_xy: np.ndarray, slot: np.ndarray, limit: float) -> np.ndarray:
    """(H, W) bool: pixels where the map jumps to a 4-neighbour by more than `limit` photo pixels, within one atlas
    photo."""
    steep = np.zeros(map_xy.shape[:2], bool)
    for axis in (0, 1):
        step = np.diff(map_xy, axis=axis)
        same = np.diff(slot, axis=axis) == 0  # a jump between atlas photos is a texture seam, not an occlusion
        pair = (step[..., 0] ** 2 + step[..., 1] ** 2 > limit ** 2) & same
        if axis == 0:
            steep[1:] |= pair
            steep[:-1] |= pair
        else:
            steep[:, 1:] |= pair
            steep[:, :-1] |= pair
    return steep


def mend_occlusions(map_xy: np.ndarray, step: int, slot_width: int, keep: np.ndarray | None = None) -> np.ndarray:
    """In place: where a nearer part hides a farther one (the nose over a turned cheek), the map jumps: the two
    sides sample photo points far apart and a seam shows. Each such step becomes a ramp no steeper than
    MEND_SLOPE by averaging the map across it (ever wider boxes until none is left), so the hidden strip is
    shown compressed rather than cut away. At rest the map has no step and stays the photo's own coordinates.
    Atlas photos (few-shot) are never mixed: a box that would sample two of them is not used. Pixels in `keep`
    (the eyes' and the mouth's openings: a closed lid or parted lips are a line, not a tear) stay as they are."""
    limit = MEND_SLOPE * step  # the map is at 1/step resolution
    slot = np.floor(map_xy[..., 0] / slot_width).astype(np.float32)
    grid = None
    for width in MEND_WIDTHS:
        steep = _steps(map_xy, slot, limit)
        if keep is not None:
            steep &= ~keep
        if not steep.any():
            break
        # Twice the box's reach: the band's edge then lies where the map is still smooth (earlier, narrower ramps
        # included), so mending a step never makes a new one where the band ends.
        reach = np.ones((2 * width + 1, 2 * width + 1), np.uint8)
        band = cv2.dilate(steep.astype(np.uint8), reach).astype(bool)
        band &= np.abs(cv2.blur(slot, (width, width)) - slot) < 1e-3  # the box stays within one photo
        if keep is not None:  # a box that reaches into an opening would spread a lid or a lip across its line
            band &= ~cv2.dilate(keep.astype(np.uint8), np.ones((width, width), np.uint8)).astype(bool)
        if grid is None:
            grid = np.stack(_pixel_grid(map_xy.shape[:2], step), axis=-1)
        # The displacement is averaged, not the coordinates: it is flat at the frame's edge, so a box there
        # (edge pixels repeated) changes nothing that was smooth.
        averaged = grid + cv2.blur(map_xy - grid, (width, width), borderType=cv2.BORDER_REPLICATE)
        np.copyto(map_xy, averaged, where=band[..., None])
    return map_xy


def sample(image: np.ndarray, map_xy: np.ndarray) -> np.ndarray:
    return cv2.remap(image, map_xy[..., 0], map_xy[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def sampling_maps_torch(layouts: list[Layout], size: int, device: str = "cpu", chunk: int = 96
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """The same maps for a whole batch in one batched computation: (B, size, size, 2) and (B, size, size).

    Each pixel takes the nearest covering triangle (smallest depth key), which is what painting far to near
    gives on the CPU path; only pixels exactly on triangle edges may pick the other neighbour."""
    import torch.nn.functional as F

    step = min(item.map_step for item in layouts)
    count = max(len(item.depth) for item in layouts)
    dst = torch.zeros(len(layouts), count, 3, 2, device=device)
    src = torch.zeros_like(dst)
    depth = torch.full((len(layouts), count), float("inf"), device=device, dtype=torch.float64)
    for b, item in enumerate(layouts):  # gathering the inputs; the rasterising below is batched
        n = len(item.depth)
        dst[b, :n], src[b, :n] = torch.from_numpy(item.dst), torch.from_numpy(item.src)
        depth[b, :n] = torch.from_numpy(item.depth)
    small = -(-size // step)
    axis = torch.arange(small, device=device, dtype=torch.float32) * step + (step - 1) / 2
    ys, xs = torch.meshgrid(axis, axis, indexing="ij")
    pixels = torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=-1)  # (P, 2)
    best_depth = torch.full((len(layouts), pixels.shape[0]), float("inf"), device=device, dtype=torch.float64)
    best_id = torch.zeros(len(layouts), pixels.shape[0], dtype=torch.long, device=device)
    for start in range(0, count, chunk):
        corners = dst[:, start:start + chunk]  # (B, C, 3, 2)
        inside = _inside_triangles(corners, pixels)  # (B, C, P)
        key = torch.where(inside, depth[:, start:start + chunk, None], torch.tensor(float("inf"), device=device,
                                                                                     dtype=torch.float64))
        chunk_depth, chunk_index = key.min(dim=1)
        better = chunk_depth < best_depth
        best_depth = torch.where(better, chunk_depth, best_depth)
        best_id = torch.where(better, chunk_index + start + 1, best_id)
    best_id[~torch.isfinite(best_depth)] = 0
    coefficients = _affine_coefficients_torch(dst, src)  # (B, N, 3, 2)
    identity = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]], device=device).expand(len(layouts), 1, 3, 2)
    table = torch.cat([identity, coefficients], dim=1)  # id 0 = uncovered: the photo stays put
    chosen = torch.gather(table, 1, best_id[..., None, None].expand(-1, -1, 3, 2))  # (B, P, 3, 2)
    homogeneous = torch.cat([pixels, torch.ones_like(pixels[:, :1])], dim=-1)  # (P, 3)
    low, high = src.amin(dim=2) - 1.0, src.amax(dim=2) + 1.0  # source_bounds for (B, N, 3, 2)
    infinite = torch.full((len(layouts), 1, 2), float("inf"), device=device)
    low = torch.gather(torch.cat([-infinite, low], dim=1), 1, best_id[..., None].expand(-1, -1, 2))
    high = torch.gather(torch.cat([infinite, high], dim=1), 1, best_id[..., None].expand(-1, -1, 2))
    mapped = torch.minimum(torch.maximum((homogeneous[None, :, :, None] * chosen).sum(dim=2), low), high)
    map_small = mapped.reshape(len(layouts), small, small, 2).cpu().numpy()
    for index, item in enumerate(layouts):  # the same mending as the CPU path (a few box filters per frame)
        mend_occlusions(map_small[index], step, size, openings_mask(item, map_small.shape[1:3]))
    map_small = torch.from_numpy(map_small).to(device)
    linear = coefficients[:, :, :2, :]
    determinant = linear[..., 0, 0] * linear[..., 1, 1] - linear[..., 0, 1] * linear[..., 1, 0]
    area_table = torch.cat([torch.ones(len(layouts), 1, device=device), determinant], dim=1)
    area_small = torch.gather(area_table, 1, best_id).reshape(len(layouts), 1, small, small)
    if step == 1:
        return map_small, area_small[:, 0]
    full = F.interpolate(map_small.permute(0, 3, 1, 2), size=(size, size), mode="bilinear", align_corners=False)
    area = F.interpolate(area_small, size=(size, size), mode="nearest")
    return full.permute(0, 2, 3, 1), area[:, 0]


def _inside_triangles(corners: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
    """(B, C, 3, 2) triangles, (P, 2) points -> (B, C, P) inside or on an edge (either winding)."""
    a, b, c = corners[:, :, None, 0], corners[:, :, None, 1], corners[:, :, None, 2]
    p = pixels[None, None]

    def edge(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return (v[..., 0] - u[..., 0]) * (p[..., 1] - u[..., 1]) - (v[..., 1] - u[..., 1]) * (p[..., 0] - u[..., 0])

    e0, e1, e2 = edge(a, b), edge(b, c), edge(c, a)
    return ((e0 >= 0) & (e1 >= 0) & (e2 >= 0)) | ((e0 <= 0) & (e1 <= 0) & (e2 <= 0))


def _affine_coefficients_torch(dst: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
    homogeneous = torch.cat([dst, torch.ones_like(dst[..., :1])], dim=-1).double()
    degenerate = torch.linalg.det(homogeneous).abs() < 1e-9
    homogeneous = torch.where(degenerate[..., None, None], torch.eye(3, dtype=torch.float64, device=dst.device),
                              homogeneous)
    return (torch.linalg.inv(homogeneous) @ src.double()).float()


def sample_torch(images: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """(B, 3, S, S) float images sampled at (B, S, S, 2) pixel coordinates (bilinear, edges replicated)."""
    import torch.nn.functional as F

    size = torch.tensor([images.shape[-1], images.shape[-2]], device=maps.device, dtype=maps.dtype)
    grid = (2 * maps + 1) / size - 1  # pixel centres -> align_corners=False normalised coordinates
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


SEAM_JUMP = 3.0  # px of source per px of output: more is a discontinuity (an occlusion edge, a texture seam)


def soften_seams(image: np.ndarray, map_xy: np.ndarray) -> np.ndarray:
    """In place: pixels where the map jumps (a cheek occluding the background, a seam between textures) get a
    3x3 average of their neighbourhood, so the nearest-triangle choice there does not show as jagged steps."""
    jump = np.zeros(map_xy.shape[:2], np.uint8)
    for axis in (0, 1):  # one coordinate plane at a time: contiguous, ~10x faster than a max over the last axis
        plane = np.ascontiguousarray(map_xy[..., axis])
        jump[:, 1:] |= np.abs(plane[:, 1:] - plane[:, :-1]) > SEAM_JUMP
        jump[1:, :] |= np.abs(plane[1:, :] - plane[:-1, :]) > SEAM_JUMP
    if not jump.any():
        return image
    band = cv2.dilate(jump, np.ones((2, 2), np.uint8))
    np.copyto(image, cv2.blur(image, (3, 3)), where=band[..., None].astype(bool))
    return image
