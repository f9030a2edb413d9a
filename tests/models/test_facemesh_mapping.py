"""The FaceMesh -> iBUG 68 table: agreement with dlib on real frames, mirror symmetry, valid contours.

FaceMesh runs in a crop 1.5x dlib's face box (evaluation.facemesh_reference), so these tests judge the table, not
the tracker. NME = mean point error / inter-ocular distance (dlib's eye centres).
"""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.facemesh_reference import Sample, decode, inter_ocular, mesh_in_crops, point_errors, samples
from models.facemesh.eyes import LEFT_EYE_VERTICES, LID_POINTS, RIGHT_EYE_VERTICES
from models.facemesh.mapping import IBUG68_EYES_FROM_REFINED_MESH as EYES
from models.facemesh.mapping import IBUG68_FROM_MESH, IBUG_MIRROR, MESH_CONTOURS, to_ibug68
from models.facemesh.networks import MESH_POINTS, MESH_SIZE

# Measured mean NME on these frames: WolfgangLanger (the fitting clip) 0.070 overall, 0.052 without the jaw;
# single_face (held out, another person) 0.056 and 0.036. Limits leave ~20% headroom. For scale: the
# commonly copied nearest-vertex table gives 0.098 / 0.064 on the same clips, and points in the wrong
# order or a face in the wrong place give > 0.3.
LIMITS = {  # clip: (frame step, max mean NME, max mean NME of points 17-67)
    "WolfgangLanger_Pexels.mp4": (8, 0.085, 0.065),
    "single_face.mp4": (4, 0.07, 0.05),
}
# The mesh itself is not exactly flip-equivariant: mapped points of a flipped crop, flipped back, differ
# from the original's by 0.025-0.037 NME (measured); a left/right mix-up gives ~0.9 (the eyes ~1.0).
MIRROR_LIMIT = 0.06


@pytest.fixture(scope="module")
def clip_samples() -> dict[str, list[Sample]]:
    return {name: samples(list(decode(name, step))) for name, (step, _, _) in LIMITS.items()}


@pytest.mark.parametrize("clip", list(LIMITS))
def test_mapping_matches_dlib_on_real_frames(clip_samples, clip):
    group = clip_samples[clip]
    assert len(group) >= 15
    errors = point_errors(to_ibug68(np.stack([s.mesh for s in group])), np.stack([s.dlib68 for s in group]))
    _, overall, inner = LIMITS[clip]
    assert errors.mean() < overall
    assert errors[:, 17:].mean() < inner


def test_mirrored_face_gives_mirrored_points(clip_samples):
    crops = [s.crop for s in clip_samples["single_face.mp4"]]
    points, _ = mesh_in_crops(crops)
    flipped, _ = mesh_in_crops([np.ascontiguousarray(c[:, ::-1]) for c in crops])
    flipped[..., 0] = MESH_SIZE - flipped[..., 0]  # back into the original crop's coordinates
    original, mirrored = to_ibug68(points), to_ibug68(flipped)
    scale = inter_ocular(original)[:, None]
    swapped = np.linalg.norm(mirrored[:, list(IBUG_MIRROR)] - original, axis=-1) / scale
    assert swapped.mean() < MIRROR_LIMIT
    # Without the swap the subject's right eye lands on the left one: the swap is what makes it agree.
    unswapped = np.linalg.norm(mirrored - original, axis=-1) / scale
    assert unswapped[:, 36:48].mean() > 10 * swapped[:, 36:48].mean()


def test_right_eye_is_on_the_image_left(clip_samples):
    """dlib's convention: points 36-41 are the subject's right eye, which a camera shows on the left."""
    mapped = to_ibug68(np.stack([s.mesh for s in clip_samples["single_face.mp4"]]))
    assert (mapped[:, 36:42, 0].mean(1) < mapped[:, 42:48, 0].mean(1)).all()
    assert (mapped[:, 0, 0] < mapped[:, 16, 0]).all()


def test_ibug_mirror_is_an_involution():
    assert sorted(IBUG_MIRROR) == list(range(68))
    assert all(IBUG_MIRROR[IBUG_MIRROR[i]] == i for i in range(68))
    assert [i for i in range(68) if IBUG_MIRROR[i] == i] == [8, 27, 28, 29, 30, 33, 51, 57, 62, 66]


def test_table_is_a_convex_blend_of_valid_vertices():
    assert len(IBUG68_FROM_MESH) == 68
    for blend in IBUG68_FROM_MESH:
        assert 1 <= len(blend) <= 3
        assert all(0 <= vertex < MESH_POINTS and weight > 0 for vertex, weight in blend)
        assert len({vertex for vertex, _ in blend}) == len(blend)
        assert sum(weight for _, weight in blend) == pytest.approx(1.0)


def test_to_ibug68_shapes():
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 100, (2, 3, MESH_POINTS, 3))
    mapped = to_ibug68(points)
    assert mapped.shape == (2, 3, 68, 2) and mapped.dtype == np.float32
    np.testing.assert_allclose(to_ibug68(points[..., :2]), mapped)
    vertex = IBUG68_FROM_MESH[8][0][0]  # the chin: a single vertex
    np.testing.assert_allclose(mapped[1, 2, 8], points[1, 2, vertex, :2], rtol=1e-6)
    with pytest.raises(ValueError):
        to_ibug68(points[..., :67, :])


def test_contours_index_valid_vertices():
    expected = {"face_oval", "jaw", "right_brow", "left_brow", "nose_bridge", "nostrils", "right_eye", "left_eye",
                "lips_outer", "lips_inner"}
    assert set(MESH_CONTOURS) == expected
    for name, line in MESH_CONTOURS.items():
        assert len(line) >= 4, name
        assert all(isinstance(v, int) and 0 <= v < MESH_POINTS for v in line), name
        assert len(set(line)) >= 0.8 * len(line), name  # a polyline, not a vertex repeated


def test_jaw_points_lie_on_the_face_outline(clip_samples):
    """The jaw points sit on or just inside the mesh's outline polyline (measured: median 0, at most 0.04
    inter-ocular distances, at the ear-level ends where dlib's jaw starts inside the mesh's outline)."""
    group = clip_samples["single_face.mp4"]
    mesh = np.stack([s.mesh for s in group])
    jaw = to_ibug68(mesh)[:, :17]
    oval = mesh[:, list(MESH_CONTOURS["face_oval"])]
    segments = np.stack([oval, np.roll(oval, -1, axis=1)], axis=2)  # (F, S, 2, 2)
    distance = _point_segment_distance(jaw, segments) / inter_ocular(to_ibug68(mesh))[:, None]
    assert np.median(distance) < 0.02
    assert distance.max() < 0.1


def _point_segment_distance(points: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """(F, P, 2) points, (F, S, 2, 2) segments -> (F, P) distance to the nearest segment."""
    start, end = segments[:, None, :, 0], segments[:, None, :, 1]
    direction = end - start
    t = ((points[:, :, None] - start) * direction).sum(-1) / np.maximum((direction**2).sum(-1), 1e-9)
    nearest = start + np.clip(t, 0, 1)[..., None] * direction
    return np.linalg.norm(points[:, :, None] - nearest, axis=-1).min(-1)


def test_refined_eye_points_are_mirror_pairs_of_lid_vertices():
    """With eye refinement dlib's eye points are lid vertices the eye network writes, mirrored across the eyes."""
    assert set(EYES) == set(range(36, 48))
    for point in range(36, 42):
        position = RIGHT_EYE_VERTICES.index(EYES[point])
        assert position < LID_POINTS and LEFT_EYE_VERTICES[position] == EYES[IBUG_MIRROR[point]]
    mesh = np.random.default_rng(0).random((468, 2)).astype(np.float32)
    refined, fitted = to_ibug68(mesh, refined_eyes=True), to_ibug68(mesh)
    np.testing.assert_array_equal(refined[36:48], mesh[[EYES[k] for k in range(36, 48)]])
    np.testing.assert_array_equal(np.delete(refined, np.s_[36:48], 0), np.delete(fitted, np.s_[36:48], 0))
