"""The FaceMesh region of interest: a rotated square around a face, cropped to 192x192 on the device.

A ROI comes from a BlazeFace detection (box scaled 1.5x, rotated so the eyes are level) or from the
previous frame's 468 points (their extent along the eye line, scaled 1.5x), as in MediaPipe's
face_landmark_front graph. Frame coordinates use the pixel-index convention (pixel i's centre is i);
crop coordinates are FaceMesh's own: 0..192 across the crop.

    frame_point = centre + size * R(angle) @ (crop_point / 192 - 0.5)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from models.facemesh.networks import MESH_SIZE

ROI_SCALE = 1.5  # face box -> crop side, MediaPipe's value for both ROI sources
RIGHT_EYE_CORNER, LEFT_EYE_CORNER = 33, 263  # mesh points: outer eye corners (subject's right, left)
RIGHT_EYE_KEYPOINT, LEFT_EYE_KEYPOINT = 0, 1  # BlazeFace keypoints


@dataclass
class Roi:
    """N rotated squares in frame pixels."""

    centre: torch.Tensor  # (N, 2) x, y
    size: torch.Tensor  # (N,) side length
    angle: torch.Tensor  # (N,) radians; positive turns the crop's x axis towards +y (down) in the frame

    def __len__(self) -> int:
        return self.size.shape[0]

    def rotation(self) -> torch.Tensor:
        """(N, 2, 2) crop axes -> frame axes."""
        return _rotation(self.angle)

    @staticmethod
    def cat(rois: list[Roi]) -> Roi:
        return Roi(torch.cat([r.centre for r in rois]), torch.cat([r.size for r in rois]),
                   torch.cat([r.angle for r in rois]))


def _rotation(angle: torch.Tensor) -> torch.Tensor:
    cos, sin = torch.cos(angle), torch.sin(angle)
    return torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)


def _eye_angle(right_eye: torch.Tensor, left_eye: torch.Tensor) -> torch.Tensor:
    delta = left_eye - right_eye  # the subject's right eye is on the image's left
    return torch.atan2(delta[..., 1], delta[..., 0])


def roi_from_detection(boxes: torch.Tensor, keypoints: torch.Tensor) -> Roi:
    """Boxes (N, 4) ltrb and BlazeFace keypoints (N, 6, 2) -> ROIs."""
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    size = (boxes[:, 2:] - boxes[:, :2]).amax(dim=1) * ROI_SCALE
    return Roi(centre, size, _eye_angle(keypoints[:, RIGHT_EYE_KEYPOINT], keypoints[:, LEFT_EYE_KEYPOINT]))


def roi_from_landmarks(points: torch.Tensor) -> Roi:
    """Mesh points (N, 468, 2 or 3) in frame pixels -> ROIs for the next frame.

    The extent is measured along the eye line, not the image axes, so a tilted head does not get a
    looser crop (an axis-aligned box grows by up to 41% at 45 degrees of roll)."""
    xy = points[..., :2]
    angle = _eye_angle(xy[:, RIGHT_EYE_CORNER], xy[:, LEFT_EYE_CORNER])
    rotation = _rotation(angle)
    local = xy @ rotation  # frame -> crop axes (row vectors times R is R^T applied)
    low, high = local.amin(dim=1), local.amax(dim=1)
    centre = ((low + high) / 2)[:, None] @ rotation.transpose(1, 2)
    size = (high - low).amax(dim=1) * ROI_SCALE
    return Roi(centre[:, 0], size, angle)


def _sampling_grid(roi: Roi, height: int, width: int) -> torch.Tensor:
    """affine_grid parameters (N, 2, 3): crop normalised coords -> frame normalised coords (align_corners=False)."""
    # frame_idx = centre + (size / 2) * R @ crop_norm ; frame_norm = (2 * frame_idx + 1) / side - 1
    extent = torch.tensor([width, height], dtype=roi.size.dtype, device=roi.size.device)
    linear = roi.rotation() * (roi.size[:, None, None] / extent[None, :, None])
    shift = (2 * roi.centre + 1) / extent - 1
    return torch.cat([linear, shift[..., None]], dim=2)


def crop(frames: list[torch.Tensor], frame_index: list[int], roi: Roi, side: int = MESH_SIZE) -> torch.Tensor:
    """Crop ROI i from frames[frame_index[i]] -> (N, 3, side, side) float 0..255 (zeros outside the frame).

    frames are (3, H, W) device tensors; frames of one size share one grid_sample call."""
    out = torch.zeros(len(roi), 3, side, side, device=roi.size.device)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, frame in enumerate(frame_index):
        groups.setdefault(tuple(frames[frame].shape[1:]), []).append(i)
    for (height, width), members in groups.items():
        index = torch.tensor(members, device=out.device)
        source = torch.stack([frames[frame_index[i]] for i in members]).float()
        theta = _sampling_grid(Roi(roi.centre[index], roi.size[index], roi.angle[index]), height, width)
        grid = F.affine_grid(theta, [len(members), 3, side, side], align_corners=False)
        out[index] = F.grid_sample(source, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out


def to_frame(points: torch.Tensor, roi: Roi, side: int = MESH_SIZE) -> torch.Tensor:
    """Network output (N, P, 3) in pixels of a side x side crop -> frame pixels; z is scaled like x and y."""
    scale = roi.size / side
    xy = (points[..., :2] - side / 2) * scale[:, None, None]
    xy = xy @ roi.rotation().transpose(1, 2) + roi.centre[:, None]
    return torch.cat([xy, points[..., 2:] * scale[:, None, None]], dim=-1)


def to_crop(points: torch.Tensor, roi: Roi, side: int = MESH_SIZE) -> torch.Tensor:
    """The inverse of to_frame for (N, P, 2) frame points -> crop pixels."""
    local = (points - roi.centre[:, None]) @ roi.rotation()
    return local / (roi.size / side)[:, None, None] + side / 2
