"""BlazeFace (short range) post-processing in torch, batched over N frames.

Follows MediaPipe's face_detection_short_range graph: SSD anchors (strides 8, 16, 16, 16 on a 128-px
input, fixed size 1), regressors in 128-px units around each anchor centre, sigmoid scores with a
threshold, and weighted non-max suppression. Frames are letterboxed to 128x128 on the device.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from models.facemesh.networks import DETECTOR_SIZE, NetworkRunner

STRIDES = (8, 16, 16, 16)
ANCHORS_PER_CELL = 2  # one aspect ratio (1.0) plus the interpolated scale, per layer
NUM_KEYPOINTS = 6  # right eye, left eye, nose tip, mouth centre, right ear tragion, left ear tragion
LOGIT_CLIP = 100.0


@dataclass(frozen=True)
class DetectionConfig:
    score_threshold: float = 0.5
    iou_threshold: float = 0.3  # boxes overlapping more than this are blended into one
    max_faces: int = 4  # detections kept per frame after suppression


@dataclass
class Detections:
    """Per-frame detections in frame pixels; `valid` masks the padded slots (fewer faces than max_faces)."""

    boxes: torch.Tensor  # (N, K, 4) left, top, right, bottom
    keypoints: torch.Tensor  # (N, K, 6, 2) x, y
    scores: torch.Tensor  # (N, K) probabilities, descending
    valid: torch.Tensor  # (N, K) bool


@functools.cache
def _anchor_table() -> torch.Tensor:
    rows = []
    layer = 0
    while layer < len(STRIDES):
        # Consecutive layers with the same stride share one grid (MediaPipe's SsdAnchorsCalculator).
        stride, per_cell = STRIDES[layer], 0
        while layer < len(STRIDES) and STRIDES[layer] == stride:
            per_cell += ANCHORS_PER_CELL
            layer += 1
        grid = int(np.ceil(DETECTOR_SIZE / stride))
        ys, xs = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
        centres = np.stack([(xs + 0.5) / grid, (ys + 0.5) / grid], axis=-1).reshape(-1, 1, 2)
        rows.append(np.repeat(centres, per_cell, axis=1).reshape(-1, 2))
    return torch.from_numpy(np.concatenate(rows).astype(np.float32))


def anchors(device: str | torch.device = "cpu") -> torch.Tensor:
    """(896, 2) anchor centres (x, y) in 0..1 of the 128-px input; the anchor size is fixed at 1."""
    return _anchor_table().to(device)


@dataclass
class Letterbox:
    """Where each frame lies inside its 128x128 detector input: input_px = frame_px * scale + offset."""

    pixels: torch.Tensor  # (N, 3, 128, 128) float 0..255
    scale: torch.Tensor  # (N,)
    offset: torch.Tensor  # (N, 2) x, y


@dataclass(frozen=True)
class Placement:
    """Where a height x width frame goes in the 128x128 input: resized to (height, width), at (top, left)."""

    height: int
    width: int
    top: int
    left: int
    scale: float  # input pixels per frame pixel (x and y agree up to rounding)


def placement(height: int, width: int) -> Placement:
    ratio = DETECTOR_SIZE / max(height, width)
    new_h, new_w = max(1, round(height * ratio)), max(1, round(width * ratio))
    return Placement(new_h, new_w, (DETECTOR_SIZE - new_h) // 2, (DETECTOR_SIZE - new_w) // 2, new_w / width)


def letterbox(frames: list[torch.Tensor]) -> Letterbox:
    """Frames (3, H, W) of any sizes -> one padded 128x128 batch, keeping aspect ratio (zeros around)."""
    device = frames[0].device
    pixels = torch.zeros(len(frames), 3, DETECTOR_SIZE, DETECTOR_SIZE, device=device)
    scale = torch.empty(len(frames), device=device)
    offset = torch.empty(len(frames), 2, device=device)
    groups: dict[tuple[int, int], list[int]] = {}
    for index, frame in enumerate(frames):
        groups.setdefault(tuple(frame.shape[1:]), []).append(index)
    for (height, width), members in groups.items():  # one resize per frame size, not per frame
        place = placement(height, width)
        top, left, new_h, new_w = place.top, place.left, place.height, place.width
        batch = torch.stack([frames[i] for i in members]).float()
        # Antialiased downscale: bilinear sampling alone would alias a 640-px frame badly at 128 px.
        small = F.interpolate(batch, size=(new_h, new_w), mode="bilinear", antialias=True, align_corners=False)
        index = torch.tensor(members, device=device)
        pixels[index, :, top:top + new_h, left:left + new_w] = small
        scale[index] = torch.tensor([place.scale], device=device)
        offset[index] = torch.tensor([left, top], dtype=torch.float32, device=device)
    return Letterbox(pixels, scale, offset)


def decode(regressors: torch.Tensor, logits: torch.Tensor,
           threshold: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Raw outputs (N, 896, 16), (N, 896) -> boxes (N, 896, 4) ltrb and keypoints (N, 896, 6, 2) in 0..1
    of the detector input, and scores (N, 896) with those under the threshold set to 0."""
    anchor = anchors(regressors.device)  # (896, 2)
    values = regressors / DETECTOR_SIZE
    centre = values[..., 0:2] + anchor
    half = values[..., 2:4] / 2
    boxes = torch.cat([centre - half, centre + half], dim=-1)
    keypoints = values[..., 4:4 + 2 * NUM_KEYPOINTS].reshape(*values.shape[:2], NUM_KEYPOINTS, 2) + anchor[:, None]
    scores = torch.sigmoid(logits.clamp(-LOGIT_CLIP, LOGIT_CLIP))
    return boxes, keypoints, torch.where(scores >= threshold, scores, torch.zeros_like(scores))


def box_iou(one: torch.Tensor, many: torch.Tensor) -> torch.Tensor:
    """IoU of boxes (N, 4) against (N, M, 4) -> (N, M)."""
    one = one[:, None]
    left_top = torch.maximum(one[..., :2], many[..., :2])
    right_bottom = torch.minimum(one[..., 2:], many[..., 2:])
    inter = (right_bottom - left_top).clamp(min=0).prod(-1)
    area_one = (one[..., 2:] - one[..., :2]).clamp(min=0).prod(-1)
    area_many = (many[..., 2:] - many[..., :2]).clamp(min=0).prod(-1)
    return inter / (area_one + area_many - inter).clamp(min=1e-9)


def weighted_nms(boxes: torch.Tensor, keypoints: torch.Tensor, scores: torch.Tensor,
                 config: DetectionConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """MediaPipe's weighted NMS, batched: take the best remaining box, blend every remaining box that
    overlaps it (weights = scores), drop them, repeat. One step per kept face, vectorised over frames."""
    count, _, _ = boxes.shape
    remaining = scores.clone()
    location = torch.cat([boxes, keypoints.flatten(2)], dim=-1)  # (N, 896, 16)
    kept_loc, kept_score = [], []
    rows = torch.arange(count, device=boxes.device)
    for _ in range(config.max_faces):
        if kept_loc and not bool((remaining > 0).any()):
            break  # no candidate left in any frame (one face: after the first step); the rest is padding
        best_score, best = remaining.max(dim=1)
        overlap = box_iou(boxes[rows, best], boxes) > config.iou_threshold
        cluster = overlap & (remaining > 0)
        weights = torch.where(cluster, remaining, torch.zeros_like(remaining))
        total = weights.sum(dim=1, keepdim=True).clamp(min=1e-9)
        kept_loc.append((weights[..., None] * location).sum(dim=1) / total)
        kept_score.append(best_score)
        remaining = torch.where(cluster, torch.zeros_like(remaining), remaining)
        remaining[rows, best] = 0  # the best box leaves even if (degenerate) it does not overlap itself
    location = torch.stack(kept_loc, dim=1)
    score = torch.stack(kept_score, dim=1)
    if len(kept_loc) < config.max_faces:  # the same (N, max_faces) shapes as a full run: empty slots, score 0
        missing = config.max_faces - len(kept_loc)
        location = torch.cat([location, location.new_zeros(count, missing, location.shape[-1])], dim=1)
        score = torch.cat([score, score.new_zeros(count, missing)], dim=1)
    return location[..., :4], location[..., 4:].reshape(count, -1, NUM_KEYPOINTS, 2), score, score > 0


def in_frame(regressors: torch.Tensor, logits: torch.Tensor, scale: torch.Tensor, offset: torch.Tensor,
             config: DetectionConfig) -> Detections:
    """Raw detector outputs (N, 896, 16), (N, 896) on letterboxed inputs (`Letterbox.scale`, `.offset`) ->
    detections in frame pixels, in the pixel-index convention (the centre of pixel i is i)."""
    boxes, keypoints, scores = decode(regressors, logits, config.score_threshold)
    boxes, keypoints, scores, valid = weighted_nms(boxes, keypoints, scores, config)
    scale, offset = scale[:, None, None, None], offset[:, None, None]
    corners = (boxes.reshape(*boxes.shape[:2], 2, 2) * DETECTOR_SIZE - offset) / scale - 0.5
    keypoints = (keypoints * DETECTOR_SIZE - offset) / scale - 0.5
    return Detections(corners.reshape(boxes.shape), keypoints, scores, valid)


class FaceDetector:
    """Batched BlazeFace: RGB frames (as device tensors) -> face boxes and keypoints in frame pixels."""

    def __init__(self, runner: NetworkRunner, config: DetectionConfig = DetectionConfig()) -> None:
        self.runner = runner
        self.config = config

    def __call__(self, frames: list[torch.Tensor]) -> Detections:
        """frames: (3, H, W) tensors (uint8 or float 0..255), sizes may differ."""
        boxed = letterbox(frames)
        regressors, logits = self.runner(boxed.pixels)
        return in_frame(regressors, logits, boxed.scale, boxed.offset, self.config)
