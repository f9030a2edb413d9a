"""Landmark images: 68 landmarks drawn as anti-aliased lines, one colour per facial part, batched in torch.

Every pixel's distance to every segment is computed at once (no Python loop over faces), so the same
code runs on CPU or GPU and exports to ONNX.
"""

from __future__ import annotations

import itertools

import torch

# (first, last, closed, RGB colour in -1..1): dlib's 68-point parts.
_PARTS = (
    (0, 16, False, (1.0, 1.0, 1.0)),  # jaw
    (17, 21, False, (1.0, -1.0, -1.0)),  # brows
    (22, 26, False, (1.0, -1.0, -1.0)),
    (27, 30, False, (-1.0, 1.0, -1.0)),  # nose bridge
    (31, 35, False, (-1.0, 1.0, -1.0)),  # nostrils
    (36, 41, True, (-1.0, -1.0, 1.0)),  # eyes
    (42, 47, True, (-1.0, -1.0, 1.0)),
    (48, 59, True, (1.0, 1.0, -1.0)),  # outer lips
    (60, 67, True, (1.0, -1.0, 1.0)),  # inner lips
)


def _segments() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    starts, ends, colours = [], [], []
    for first, last, closed, colour in _PARTS:
        points = list(range(first, last + 1))
        pairs = list(itertools.pairwise(points)) + ([(last, first)] if closed else [])
        for a, b in pairs:
            starts.append(a)
            ends.append(b)
            colours.append(colour)
    return torch.tensor(starts), torch.tensor(ends), torch.tensor(colours)


SEGMENT_STARTS, SEGMENT_ENDS, SEGMENT_COLOURS = _segments()


def landmark_image(landmarks: torch.Tensor, size: int, thickness: float | None = None) -> torch.Tensor:
    """(B, 68, 2) landmarks in pixels -> (B, 3, size, size) image in -1..1 (background -1)."""
    thickness = thickness if thickness is not None else max(1.0, size / 128)
    device, dtype = landmarks.device, landmarks.dtype
    coords = torch.arange(size, device=device, dtype=dtype)
    ys, xs = torch.meshgrid(coords, coords, indexing="ij")
    pixels = torch.stack([xs, ys], dim=-1).reshape(1, -1, 1, 2)  # (1, P, 1, 2)
    a = landmarks[:, SEGMENT_STARTS.to(device)].unsqueeze(1)  # (B, 1, S, 2)
    b = landmarks[:, SEGMENT_ENDS.to(device)].unsqueeze(1)
    ab = b - a
    t = ((pixels - a) * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-6)
    closest = a + t.clamp(0, 1).unsqueeze(-1) * ab
    distance = (pixels - closest).norm(dim=-1)  # (B, P, S)
    weight = (1 - distance / thickness).clamp(0, 1)
    strength, nearest = weight.max(dim=-1)  # the nearest segment's colour wins
    colour = SEGMENT_COLOURS.to(device=device, dtype=dtype)[nearest]  # (B, P, 3)
    image = -1 + strength.unsqueeze(-1) * (colour + 1)
    return image.reshape(landmarks.shape[0], size, size, 3).permute(0, 3, 1, 2).contiguous()
