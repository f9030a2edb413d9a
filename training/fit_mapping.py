"""Fit the 468-point FaceMesh -> 68-point iBUG table against dlib on real video frames, and print it as Python
for models/facemesh/mapping.py, with per-point errors and sanity checks.

For each iBUG point it picks the mesh vertex, or a convex blend of 2-3 nearby vertices on a 0.1 weight grid,
with the lowest mean error over inter-ocular distance. Left/right pairs are fitted together (a point and its
mirror image use mirrored vertices, found by running the mesh on flipped crops), so the table is symmetric by
construction; midline points only take symmetric candidates. A blend is kept only when it clearly helps.

    python -m training.fit_mapping                      # fit on WolfgangLanger, check on single_face
    python -m training.fit_mapping --fit-step 4 --check-step 2   # quicker
"""

from __future__ import annotations

import argparse
import itertools
import sys
import textwrap
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import shortest_path
from scipy.spatial import ConvexHull, Delaunay

from evaluation.facemesh_reference import Sample, decode, inter_ocular, mesh_in_crops, point_errors, samples
from models.facemesh.mapping import IBUG_MIRROR
from models.facemesh.networks import MESH_POINTS, MESH_SIZE

Candidate = tuple[tuple[int, float], ...]  # (vertex, weight) pairs, weights sum to 1


@dataclass(frozen=True)
class FitConfig:
    shortlist: int = 8  # nearest vertices per point (by single-vertex error) that blends are built from
    weight_step: float = 0.1  # blend weights are multiples of this, so the table stays readable
    blend_gain: float = 0.10  # a 2-vertex blend must cut the single vertex's error by this fraction
    triple_gain: float = 0.05  # a 3-vertex blend must cut the best 1-2 vertex error by this fraction


def mesh_mirror(fitted: list[Sample]) -> np.ndarray:
    """(468,) vertex -> its mirror vertex, from the mesh on horizontally flipped crops (x -> 192 - x)."""
    points, _ = mesh_in_crops([s.crop for s in fitted])
    flipped, _ = mesh_in_crops([np.ascontiguousarray(s.crop[:, ::-1]) for s in fitted])
    flipped[..., 0] = MESH_SIZE - flipped[..., 0]
    distance = np.linalg.norm(points[:, :, None, :2] - flipped[:, None, :, :2], axis=-1).mean(0)
    # One-to-one and symmetric in cost: nearest neighbours alone pair two vertices with one mirror.
    _, mirror = linear_sum_assignment(distance + distance.T)
    return mirror


def _weights(parts: int, step: float) -> np.ndarray:
    units = round(1 / step)
    grid = [w for w in itertools.product(range(1, units), repeat=parts) if sum(w) == units]
    return np.array(grid, dtype=np.float64) / units


def _candidates(vertices: list[int], config: FitConfig) -> list[Candidate]:
    out: list[Candidate] = [((v, 1.0),) for v in vertices]
    for parts in (2, 3):
        weights = _weights(parts, config.weight_step)
        for combo in itertools.combinations(vertices, parts):
            out.extend(tuple(zip(combo, map(float, w), strict=True)) for w in weights)
    return out


def _mirrored(candidate: Candidate, mirror: np.ndarray) -> Candidate:
    return tuple(sorted((int(mirror[v]), w) for v, w in candidate))


def _errors(candidates: list[Candidate], mesh: np.ndarray, target: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Mean normalised error of each candidate blend: mesh (F, 468, 2), target (F, 2), scale (F,)."""
    width = max(len(c) for c in candidates)
    index = np.zeros((len(candidates), width), dtype=np.int64)
    weight = np.zeros((len(candidates), width))
    for row, candidate in enumerate(candidates):
        for col, (v, w) in enumerate(candidate):
            index[row, col], weight[row, col] = v, w
    blended = np.einsum("fcwd,cw->fcd", mesh[:, index], weight)
    return (np.linalg.norm(blended - target[:, None], axis=-1) / scale[:, None]).mean(0)


def _choose(candidates: list[Candidate], cost: np.ndarray, config: FitConfig) -> Candidate:
    best = {n: min((i for i, c in enumerate(candidates) if len(c) == n), key=cost.__getitem__, default=None)
            for n in (1, 2, 3)}
    pick = best[1] if best[1] is not None else best[2]
    if best[2] is not None and (pick is None or cost[best[2]] < (1 - config.blend_gain) * cost[pick]):
        pick = best[2]
    if best[3] is not None and (pick is None or cost[best[3]] < (1 - config.triple_gain) * cost[pick]):
        pick = best[3]
    return candidates[pick]


def fit(fitted: list[Sample], mirror: np.ndarray, config: FitConfig = FitConfig()) -> list[Candidate]:
    mesh = np.stack([s.mesh for s in fitted]).astype(np.float64)
    dlib = np.stack([s.dlib68 for s in fitted]).astype(np.float64)
    scale = inter_ocular(dlib)
    single = (np.linalg.norm(mesh[:, None] - dlib[:, :, None], axis=-1) / scale[:, None, None]).mean(0)  # (68, 468)
    table: list[Candidate | None] = [None] * 68
    for point in range(68):
        other = IBUG_MIRROR[point]
        if table[point] is not None:
            continue
        near = set(np.argsort(single[point])[:config.shortlist].tolist())
        near |= {int(mirror[v]) for v in np.argsort(single[other])[:config.shortlist]}
        candidates = _candidates(sorted(near), config)
        if other == point:  # midline: only blends that are their own mirror image
            candidates = [c for c in candidates if _mirrored(c, mirror) == tuple(sorted(c))]
        cost = _errors(candidates, mesh, dlib[:, point], scale)
        if other != point:
            cost = cost + _errors([_mirrored(c, mirror) for c in candidates], mesh, dlib[:, other], scale)
        chosen = _choose(candidates, cost, config)
        table[point] = chosen
        table[other] = _mirrored(chosen, mirror) if other != point else chosen
    return [c for c in table if c is not None]


def contours(fitted: list[Sample], table: list[Candidate]) -> dict[str, tuple[int, ...]]:
    """Drawing polylines: the outline of the mean mesh, and shortest paths over its Delaunay edges between the
    main vertices of consecutive iBUG points (so each feature's outline follows the mesh's own vertices)."""
    mean = np.stack([(s.mesh - s.transform.origin) / s.transform.scale for s in fitted]).mean(0)  # crop units
    hull = ConvexHull(mean).vertices.tolist()  # counter-clockwise
    top = max(range(len(hull)), key=lambda i: -mean[hull[i], 1])
    oval = hull[top:] + hull[:top]
    triangles = Delaunay(mean).simplices
    edges = {tuple(sorted(e)) for t in triangles for e in itertools.combinations(t.tolist(), 2)}
    rows, cols = zip(*edges, strict=True)
    length = np.linalg.norm(mean[list(rows)] - mean[list(cols)], axis=1)
    graph = csr_matrix((length, (rows, cols)), shape=(MESH_POINTS, MESH_POINTS))
    _, previous = shortest_path(graph, directed=False, return_predecessors=True)
    main = [max(c, key=lambda vw: vw[1])[0] for c in table]

    def path(points: range, closed: bool) -> tuple[int, ...]:
        anchors = [main[p] for p in points] + ([main[points[0]]] if closed else [])
        line = [anchors[0]]
        for a, b in itertools.pairwise(anchors):
            step, walk = b, []
            while step != a and step >= 0:
                walk.append(int(step))
                step = previous[a, step]
            line.extend(reversed(walk))
        return _without_backtracks(line[:-1] if closed else line)

    return {"face_oval": tuple(oval), "jaw": path(range(0, 17), False),
            "right_brow": path(range(17, 22), False), "left_brow": path(range(22, 27), False),
            "nose_bridge": path(range(27, 31), False), "nostrils": path(range(31, 36), False),
            "right_eye": path(range(36, 42), True), "left_eye": path(range(42, 48), True),
            "lips_outer": path(range(48, 60), True), "lips_inner": path(range(60, 68), True)}


def _without_backtracks(line: list[int]) -> tuple[int, ...]:
    """Drop out-and-back spurs (a, b, a -> a): paths between blend anchors can overshoot and return."""
    out: list[int] = []
    for vertex in line:
        if len(out) >= 2 and out[-2] == vertex:
            out.pop()
        elif not out or out[-1] != vertex:
            out.append(vertex)
    return tuple(out)


def _format(table: list[Candidate], mesh_contours: dict[str, tuple[int, ...]]) -> str:
    lines = ["IBUG68_FROM_MESH: tuple[tuple[tuple[int, float], ...], ...] = ("]
    for point, candidate in enumerate(table):
        body = ", ".join(f"({v}, {w:.1f})" for v, w in candidate)
        lines.append(f"    ({body},),  # {point}")
    lines.append(")")
    lines.append("MESH_CONTOURS: dict[str, tuple[int, ...]] = {")
    for name, line in mesh_contours.items():
        numbers = textwrap.wrap(", ".join(map(str, line)) + ",", width=112)
        lines.extend([f'    "{name}": (', *(f"        {row}" for row in numbers), "    ),"])
    lines.append("}")
    return "\n".join(lines)


def _report(name: str, group: list[Sample], table: list[Candidate]) -> np.ndarray:
    dlib = np.stack([s.dlib68 for s in group])
    mesh = np.stack([s.mesh for s in group])
    mapped = _apply(table, mesh)
    errors = point_errors(mapped, dlib)
    per_frame = errors.mean(1)
    print(f"# {name}: {len(group)} frames, NME mean {per_frame.mean():.4f} median {np.median(per_frame):.4f} "
          f"max {per_frame.max():.4f}")
    return errors.mean(0)


def _apply(table: list[Candidate], mesh: np.ndarray) -> np.ndarray:
    out = np.zeros((*mesh.shape[:-2], 68, 2))
    for point, candidate in enumerate(table):
        for v, w in candidate:
            out[..., point, :] += w * mesh[..., v, :2]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.fit_mapping", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fit-clip", default="WolfgangLanger_Pexels.mp4")
    parser.add_argument("--fit-step", type=int, default=2, help="use every N-th frame of the fitting clip")
    parser.add_argument("--check-clip", default="single_face.mp4", help="held-out clip (another person)")
    parser.add_argument("--check-step", type=int, default=1)
    args = parser.parse_args(argv)
    fitted = samples(list(decode(args.fit_clip, args.fit_step)))
    held_out = samples(list(decode(args.check_clip, args.check_step)))
    mirror = mesh_mirror(fitted)
    involution = float((mirror[mirror] == np.arange(MESH_POINTS)).mean())
    table = fit(fitted, mirror)
    mesh_contours = contours(fitted, table)
    print(_format(table, mesh_contours))
    print(f"# mesh mirror map: {involution:.1%} of vertices map back to themselves, "
          f"{int((mirror == np.arange(MESH_POINTS)).sum())} on the midline")
    fit_errors = _report(f"fit {args.fit_clip} every {args.fit_step}", fitted, table)
    check_errors = _report(f"held out {args.check_clip} every {args.check_step}", held_out, table)
    print("# per point NME (fit / held out): " + " ".join(
        f"{p}:{a:.3f}/{b:.3f}" for p, (a, b) in enumerate(zip(fit_errors, check_errors, strict=True))))
    oval = set(mesh_contours["face_oval"])
    jaw = [max(table[p], key=lambda vw: vw[1])[0] for p in range(17)]
    print(f"# jaw main vertices on the face oval: {sum(v in oval for v in jaw)}/17 {jaw}")
    asymmetric = [p for p in range(68) if _mirrored(table[p], mirror) != tuple(sorted(table[IBUG_MIRROR[p]]))]
    print(f"# points whose table entry is not the mirror of their partner's: {asymmetric}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
