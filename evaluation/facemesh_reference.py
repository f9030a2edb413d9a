"""Ground truth for checking FaceMesh against dlib: video frames, dlib's 68 points, and FaceMesh run in a
crop around dlib's face box (so the mesh is judged without the tracker's own ROI choices).

Coordinates follow the pixel-index convention (pixel i's centre is i), as dlib and models.facemesh.roi do;
FaceMesh's crop coordinates run 0..192 across the crop.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import av
import cv2
import numpy as np
import torch

from models.assets import sample_media
from models.facemesh.networks import MESH_SIZE, face_mesh
from models.landmarks import Box, detect_face_boxes, landmarks_in_box, to_gray

CROP_SCALE = 1.5  # crop side / dlib box side: dlib's box is brows-to-chin, the mesh wants the whole head
TALKING_CLIPS = ("WolfgangLanger_Pexels.mp4", "single_face.mp4")


def decode(name: str, step: int = 1, limit: int | None = None) -> Iterator[np.ndarray]:
    """RGB uint8 frames of a sample video: every `step`-th frame, at most `limit` of them."""
    with av.open(str(sample_media(name))) as container:
        frames = itertools.islice(container.decode(video=0), 0, None, step)
        for frame in itertools.islice(frames, limit):
            yield frame.to_ndarray(format="rgb24")


def inter_ocular(landmarks: np.ndarray) -> np.ndarray:
    """Distance between the eye centres of (..., 68, 2) iBUG points (the NME normaliser)."""
    return np.linalg.norm(landmarks[..., 42:48, :].mean(-2) - landmarks[..., 36:42, :].mean(-2), axis=-1)


def point_errors(points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per-point distance over inter-ocular distance: (..., 68, 2) x2 -> (..., 68)."""
    return np.linalg.norm(points - reference, axis=-1) / inter_ocular(reference)[..., None]


def nme(points: np.ndarray, reference: np.ndarray) -> float:
    """Mean normalised error of one face (68, 2) against reference (68, 2)."""
    return float(point_errors(points, reference).mean())


@dataclass(frozen=True)
class CropTransform:
    """An axis-aligned square crop: frame = origin + scale * crop, crop in FaceMesh's 0..192 units."""

    origin: np.ndarray  # (2,) frame position of crop coordinate 0 (the crop's outer corner)
    scale: float  # frame pixels per crop unit

    @staticmethod
    def around(box: Box, crop_scale: float = CROP_SCALE) -> CropTransform:
        left, top, right, bottom = box
        side = max(right - left, bottom - top) * crop_scale
        centre = np.array([(left + right) / 2, (top + bottom) / 2])
        return CropTransform(centre - side / 2, side / MESH_SIZE)

    def cut(self, rgb: np.ndarray) -> np.ndarray:
        """The 192x192 crop (black outside the frame); crop pixel u's centre is crop coordinate u + 0.5."""
        start = self.origin + 0.5 * self.scale
        matrix = np.array([[self.scale, 0, start[0]], [0, self.scale, start[1]]], dtype=np.float64)
        return cv2.warpAffine(rgb, matrix, (MESH_SIZE, MESH_SIZE), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    def to_frame(self, points: np.ndarray) -> np.ndarray:
        """(..., 2) crop coordinates -> frame pixels."""
        return self.origin + self.scale * points[..., :2]


@dataclass
class Sample:
    """One frame where dlib found a face: its 68 points and FaceMesh's 468 points, both in frame pixels."""

    dlib68: np.ndarray  # (68, 2)
    mesh: np.ndarray  # (468, 2)
    crop: np.ndarray  # (192, 192, 3) the mesh's input
    transform: CropTransform


def dlib_face(rgb: np.ndarray) -> tuple[Box, np.ndarray] | None:
    """dlib's largest face: its box and 68 points, or None."""
    gray = to_gray(rgb)
    boxes = detect_face_boxes(gray)
    return (boxes[0], landmarks_in_box(gray, boxes[0])) if boxes else None


@torch.inference_mode()
def mesh_in_crops(crops: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """FaceMesh (torch) on 192x192 RGB crops -> points (N, 468, 3) in crop units, presence logits (N,)."""
    pixels = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float()
    points, logits = face_mesh()(pixels)
    return points.numpy(), logits.numpy()


def samples(frames: list[np.ndarray], batch: int = 16) -> list[Sample]:
    """dlib on every frame, then FaceMesh in a crop around dlib's box for the frames with a face."""
    found = [(f, face) for f in frames if (face := dlib_face(f)) is not None]
    out: list[Sample] = []
    for start in range(0, len(found), batch):
        chunk = found[start:start + batch]
        transforms = [CropTransform.around(box) for _, (box, _) in chunk]
        crops = [t.cut(frame) for t, (frame, _) in zip(transforms, chunk, strict=True)]
        points, _ = mesh_in_crops(crops)
        for (_, (_, landmarks)), t, c, p in zip(chunk, transforms, crops, points, strict=True):
            out.append(Sample(landmarks, t.to_frame(p).astype(np.float32), c, t))
    return out
