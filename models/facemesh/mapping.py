"""FaceMesh's 468 points -> the 68-point iBUG convention that dlib uses, and named mesh contours for drawing.

iBUG order: jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67; "right" is the subject's right (the
image's left), as in dlib. Each iBUG point is one mesh vertex or a fixed convex blend of 2-3 vertices.

The table is fitted to dlib, not written from memory:

    python -m training.fit_mapping

Fitted on every 2nd frame of WolfgangLanger_Pexels.mp4 (236 frames with a dlib face), FaceMesh run on a
crop 1.5x dlib's face box: mean NME (point error / inter-ocular distance) 0.0717, median 0.0588. Held out,
all 72 frames of single_face.mp4: mean 0.0552, median 0.0554. The jaw is the worst part (0.10-0.18 per
point): dlib follows the visible silhouette, the mesh's jaw vertices are fixed on the 3D face; brows,
eyes, nose and lips are 0.02-0.09.

Left/right pairs were fitted together with mirrored vertices (the mesh's own mirror map, measured on flipped
crops), so the table is symmetric; midline points are midline vertices or symmetric blends. The contours are
the mean mesh's outline (face_oval) and shortest paths over its Delaunay edges between the main vertices of
consecutive iBUG points.
"""

from __future__ import annotations

import numpy as np

# Each iBUG point's partner in a horizontally mirrored face (jaw 0 <-> 16, right eye <-> left eye, ...).
IBUG_MIRROR: tuple[int, ...] = (
    *range(16, -1, -1),  # jaw
    *range(26, 16, -1),  # brows
    27, 28, 29, 30, 35, 34, 33, 32, 31,  # nose bridge, nostrils
    45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40,  # eyes
    54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55,  # outer lips
    64, 63, 62, 61, 60, 67, 66, 65,  # inner lips
)

IBUG68_FROM_MESH: tuple[tuple[tuple[int, float], ...], ...] = (
    ((111, 0.2), (127, 0.7), (234, 0.1),),  # 0
    ((147, 0.3), (234, 0.7),),  # 1
    ((93, 0.5), (147, 0.1), (215, 0.4),),  # 2
    ((58, 0.4), (138, 0.1), (215, 0.5),),  # 3
    ((172, 1.0),),  # 4
    ((136, 0.5), (150, 0.5),),  # 5
    ((149, 1.0),),  # 6
    ((148, 1.0),),  # 7
    ((152, 1.0),),  # 8
    ((377, 1.0),),  # 9
    ((378, 1.0),),  # 10
    ((365, 0.5), (379, 0.5),),  # 11
    ((397, 1.0),),  # 12
    ((288, 0.4), (367, 0.1), (435, 0.5),),  # 13
    ((323, 0.5), (376, 0.1), (435, 0.4),),  # 14
    ((376, 0.3), (454, 0.7),),  # 15
    ((340, 0.2), (356, 0.7), (454, 0.1),),  # 16
    ((46, 0.6), (139, 0.4),),  # 17
    ((68, 0.5), (224, 0.5),),  # 18
    ((66, 0.3), (104, 0.3), (223, 0.4),),  # 19
    ((108, 0.4), (222, 0.6),),  # 20
    ((9, 0.3), (107, 0.3), (221, 0.4),),  # 21
    ((9, 0.3), (336, 0.3), (441, 0.4),),  # 22
    ((337, 0.4), (442, 0.6),),  # 23
    ((296, 0.3), (333, 0.3), (443, 0.4),),  # 24
    ((298, 0.5), (444, 0.5),),  # 25
    ((276, 0.6), (368, 0.4),),  # 26
    ((168, 0.6), (245, 0.2), (465, 0.2),),  # 27
    ((6, 0.2), (196, 0.4), (419, 0.4),),  # 28
    ((4, 0.3), (195, 0.7),),  # 29
    ((4, 1.0),),  # 30
    ((60, 0.5), (98, 0.5),),  # 31
    ((97, 1.0),),  # 32
    ((2, 0.5), (164, 0.5),),  # 33
    ((326, 1.0),),  # 34
    ((290, 0.5), (327, 0.5),),  # 35
    ((25, 0.6), (163, 0.4),),  # 36
    ((159, 0.6), (163, 0.4),),  # 37
    ((159, 0.5), (173, 0.5),),  # 38
    ((112, 1.0),),  # 39
    ((22, 0.3), (153, 0.7),),  # 40
    ((23, 0.6), (163, 0.4),),  # 41
    ((341, 1.0),),  # 42
    ((386, 0.5), (398, 0.5),),  # 43
    ((386, 0.6), (390, 0.4),),  # 44
    ((255, 0.6), (390, 0.4),),  # 45
    ((253, 0.6), (390, 0.4),),  # 46
    ((252, 0.3), (380, 0.7),),  # 47
    ((43, 0.3), (61, 0.7),),  # 48
    ((40, 0.5), (73, 0.5),),  # 49
    ((37, 0.7), (82, 0.3),),  # 50
    ((11, 1.0),),  # 51
    ((267, 0.7), (312, 0.3),),  # 52
    ((270, 0.5), (303, 0.5),),  # 53
    ((273, 0.3), (291, 0.7),),  # 54
    ((320, 0.4), (406, 0.6),),  # 55
    ((316, 0.5), (421, 0.5),),  # 56
    ((15, 0.5), (200, 0.5),),  # 57
    ((86, 0.5), (201, 0.5),),  # 58
    ((90, 0.4), (182, 0.6),),  # 59
    ((146, 0.6), (183, 0.4),),  # 60
    ((82, 0.8), (178, 0.2),),  # 61
    ((13, 0.8), (15, 0.2),),  # 62
    ((312, 0.8), (402, 0.2),),  # 63
    ((375, 0.6), (407, 0.4),),  # 64
    ((316, 1.0),),  # 65
    ((15, 1.0),),  # 66
    ((86, 1.0),),  # 67
)
# With eye refinement (models/facemesh/eyes.py) the lid vertices carry the eye network's contour, and dlib's six
# points per eye are then plain lid vertices (corners, and the network's contour points at the same places): eye
# NME 0.027 vs 0.031 for the fitted blends on WolfgangLanger, 0.026 vs 0.029 on single_face.mp4. The fitted blends
# reach into the halo around the eye, which made up for FaceMesh's own lids but now shrinks a blink.
IBUG68_EYES_FROM_REFINED_MESH: dict[int, int] = {
    36: 33, 37: 160, 38: 158, 39: 133, 40: 153, 41: 144,  # right eye: outer corner, upper lid, inner corner, lower
    42: 362, 43: 385, 44: 387, 45: 263, 46: 373, 47: 380,  # left eye: the mirror vertices
}
MESH_CONTOURS: dict[str, tuple[int, ...]] = {
    "face_oval": (
        10, 338, 297, 332, 284, 251, 389, 356, 366, 401, 435, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176, 149,
        150, 136, 172, 58, 215, 177, 137, 227, 127, 162, 21, 54, 103, 67, 109,
    ),
    "jaw": (
        127, 227, 234, 137, 93, 177, 215, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288, 435,
        401, 323, 366, 454, 447, 356,
    ),
    "right_brow": (
        46, 53, 224, 223, 222, 221,
    ),
    "left_brow": (
        441, 442, 443, 444, 283, 293, 276,
    ),
    "nose_bridge": (
        168, 6, 122, 196, 195, 5, 4,
    ),
    "nostrils": (
        60, 99, 97, 141, 2, 370, 462, 326, 328, 290,
    ),
    "right_eye": (
        25, 7, 161, 160, 159, 158, 157, 173, 155, 154, 153, 23, 24, 110,
    ),
    "left_eye": (
        341, 382, 398, 384, 385, 386, 387, 388, 249, 255, 339, 254, 253, 380, 381, 382,
    ),
    "lips_outer": (
        61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 273, 335, 406, 314, 315, 316, 15, 86, 85, 84, 182, 106, 43,
    ),
    "lips_inner": (
        146, 77, 96, 95, 42, 80, 41, 81, 82, 13, 312, 311, 271, 310, 272, 324, 318, 402, 316, 15, 86, 178, 88, 95, 96,
        77,
    ),
}


def _gather_table(refined_eyes: bool) -> tuple[np.ndarray, np.ndarray]:
    """The table as (68, 3) vertex indices and (68, 3) weights (unused slots: vertex 0, weight 0)."""
    index = np.zeros((68, 3), dtype=np.int64)
    weight = np.zeros((68, 3), dtype=np.float32)
    for point, blend in enumerate(IBUG68_FROM_MESH):
        if refined_eyes and point in IBUG68_EYES_FROM_REFINED_MESH:
            blend = ((IBUG68_EYES_FROM_REFINED_MESH[point], 1.0),)
        for slot, (vertex, w) in enumerate(blend):
            index[point, slot], weight[point, slot] = vertex, w
    return index, weight


_TABLES = {refined: _gather_table(refined) for refined in (False, True)}


def to_ibug68(points: np.ndarray, refined_eyes: bool = False) -> np.ndarray:
    """Mesh points (..., 468, 2 or 3) -> iBUG points (..., 68, 2) float32 in the same units (z is dropped).

    refined_eyes: the mesh's eyelids come from the eye network (MeshTrackerConfig.refine_eyes): eye points are
    then lid vertices, not the blends fitted to FaceMesh's own eyes."""
    points = np.asarray(points)
    if points.shape[-2] != 468 or points.shape[-1] not in (2, 3):
        raise ValueError(f"expected (..., 468, 2|3) mesh points, got {points.shape}")
    xy = points[..., :2].astype(np.float32, copy=False)
    index, weight = _TABLES[refined_eyes]
    return np.einsum("...kwd,kw->...kd", xy[..., index, :], weight, dtype=np.float32)
