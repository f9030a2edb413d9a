"""The torch side of the face and eye ROIs (models/facemesh/face_rois.py): crops cut on the device with
`affine_grid`/`grid_sample`, batched, and network points taken back to frame pixels.

Frame coordinates use the pixel-index convention (pixel i's centre is i); crop coordinates are the networks' own:
0..side across the crop.

    frame_point = centre + size * R(angle) @ (crop_point / side - 0.5)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from models.facemesh.face_rois import FaceRois
from models.facemesh.networks import MESH_SIZE


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
    def from_numpy(rois: FaceRois, device: torch.device | str = "cpu") -> Roi:
        centre, size, angle = (torch.from_numpy(np.asarray(values, np.float32)).to(device)
                               for values in (rois.centre, rois.size, rois.angle))
        return Roi(centre, size, angle)


def _rotation(angle: torch.Tensor) -> torch.Tensor:
    cos, sin = torch.cos(angle), torch.sin(angle)
    return torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)


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
