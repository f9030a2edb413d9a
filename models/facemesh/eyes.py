"""Eyelid refinement: MediaPipe's eye network on two eye crops per face, written back into the 468-point mesh.

The FaceMesh model we replay barely moves its lid vertices when the eyes close (docs/facemesh.md), so after
the mesh call both eyes of every face are cut out (64x64, square, 2.3x the eye-corner distance, rotated to the
corner line, as MediaPipe's iris graph does; the left eye mirrored), run through the eye network (the landmark
engine's: models/facemesh/engines.py), and its 71 eye-contour/brow points replace the mesh vertices MediaPipe's
own refinement replaces. x and y come from the eye network; z stays the mesh's own, so the 3-D mesh keeps one
depth scale.
"""

from __future__ import annotations

import numpy as np

from models.facemesh.face_rois import FaceRois, line_angle

EYE_ROI_SCALE = 2.3  # eye-corner distance -> crop side (MediaPipe's iris graph)
LID_POINTS = 16  # the eye network's first 16 points: lower lid (corners included), then upper lid

# Mesh vertex of each eye-network point, as MediaPipe's UpdateFaceLandmarksCalculator maps them: lower lid
# (outer corner to inner corner), upper lid, then four halos around the eye and the brow. The subject's right
# eye (the image's left, the network's own orientation) first; the left eye is its mirror image.
RIGHT_EYE_VERTICES: tuple[int, ...] = (
    33, 7, 163, 144, 145, 153, 154, 155, 133,  # lower lid
    246, 161, 160, 159, 158, 157, 173,  # upper lid
    130, 25, 110, 24, 23, 22, 26, 112, 243, 247, 30, 29, 27, 28, 56, 190,  # halo 2
    226, 31, 228, 229, 230, 231, 232, 233, 244, 113, 225, 224, 223, 222, 221, 189,  # halo 3
    35, 124, 46, 53, 52, 65,  # brow, inner contour
    143, 111, 117, 118, 119, 120, 121, 128, 245, 156, 70, 63, 105, 66, 107, 55, 193,  # halo 5 / brow outer
)
LEFT_EYE_VERTICES: tuple[int, ...] = (
    263, 249, 390, 373, 374, 380, 381, 382, 362,
    466, 388, 387, 386, 385, 384, 398,
    359, 255, 339, 254, 253, 252, 256, 341, 463, 467, 260, 259, 257, 258, 286, 414,
    446, 261, 448, 449, 450, 451, 452, 453, 464, 342, 445, 444, 443, 442, 441, 413,
    265, 353, 276, 283, 282, 295,
    372, 340, 346, 347, 348, 349, 350, 357, 465, 383, 300, 293, 334, 296, 336, 285, 417,
)
# Eye corners that place each crop: the outer corner ends up on the crop's left (the left eye after mirroring).
CORNERS = ((33, 133), (362, 263))  # (image-left corner, image-right corner) of the right eye, the left eye
CORNER_STARTS, CORNER_ENDS = [a for a, _ in CORNERS], [b for _, b in CORNERS]


def eye_rois(meshes: np.ndarray) -> tuple[FaceRois, list[bool]]:
    """Mesh points (N, 468, 2|3) in frame pixels -> 2N eye ROIs, face i's right eye at 2i, its left at 2i + 1, and
    which of them the network sees mirrored (the left eyes, into the right eye's orientation)."""
    xy = meshes[..., :2].astype(np.float64)
    start, end = xy[:, CORNER_STARTS].reshape(-1, 2), xy[:, CORNER_ENDS].reshape(-1, 2)
    rois = FaceRois((start + end) / 2, np.linalg.norm(end - start, axis=-1) * EYE_ROI_SCALE, line_angle(start, end))
    return rois, [False, True] * len(meshes)


def refine_mesh(meshes: np.ndarray, eye_points: np.ndarray, vertices_per_eye: int = len(RIGHT_EYE_VERTICES)
                ) -> np.ndarray:
    """Meshes (N, 468, 3) with the eye vertices' x, y replaced by the eye network's (N, 2, 71, 2|3) points.

    `vertices_per_eye`: how many of the 71 to write back (16 = the lids only)."""
    refined = meshes.copy()
    for eye, vertices in enumerate((RIGHT_EYE_VERTICES, LEFT_EYE_VERTICES)):
        refined[:, list(vertices[:vertices_per_eye]), :2] = eye_points[:, eye, :vertices_per_eye, :2]
    return refined
