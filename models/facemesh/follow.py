"""Which detected face a stream follows: one person drives for the whole call.

A new stream takes the largest face (the person in front of the camera). From then on the stream keeps that
person: while the face is tracked, no other detection takes over (a second person who leans in, or walks
closer, is not the caller); when the face is lost (a hand over it, a frame without it), the stream picks up
again only a face close to where the followed one was last seen, with a similar size, and holds (reports no
face) until one appears. Only after `forget_after` frames without the followed face does the largest face
become a new person (the caller left; whoever sits there now drives, with a neutral face of their own).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FollowConfig:
    reacquire_distance: float = 1.0  # a returning face's centre within this many followed-face sizes
    reacquire_scale: tuple[float, float] = (0.6, 1.6)  # and its size within this ratio of the followed one
    forget_after: int = 90  # frames (3 s at 30 fps) without the followed face: it left, a new person may drive
    max_unconfirmed: int = 3  # re-detections in a row that see faces, none at the tracked one: the track is lost


def box_of(mesh: np.ndarray) -> np.ndarray:
    """(4,) left, top, right, bottom of a face's points (N, 2 or 3)."""
    return np.concatenate([mesh[:, :2].min(axis=0), mesh[:, :2].max(axis=0)]).astype(np.float64)


def _centre_and_size(box: np.ndarray) -> tuple[np.ndarray, float]:
    return (box[:2] + box[2:]) / 2, float(max(box[2] - box[0], box[3] - box[1], 1e-6))


def matches(box: np.ndarray, followed: np.ndarray, config: FollowConfig) -> bool:
    """Is a detection `box` plausibly the followed face (last seen at `followed`)?"""
    centre, size = _centre_and_size(box)
    last_centre, last_size = _centre_and_size(followed)
    ratio = size / last_size
    near = float(np.linalg.norm(centre - last_centre)) <= config.reacquire_distance * last_size
    return near and config.reacquire_scale[0] <= ratio <= config.reacquire_scale[1]


def pick(boxes: np.ndarray, followed: np.ndarray | None, config: FollowConfig) -> int | None:
    """The detection (index into boxes (K, 4)) a lost or new stream takes: with `followed` (the last box of the
    person it follows), the closest one that matches it, else none; without, the largest."""
    if len(boxes) == 0:
        return None
    if followed is None:
        sides = np.clip(boxes[:, 2:] - boxes[:, :2], 0, None)
        return int(np.argmax(sides.prod(axis=1)))
    last_centre, _ = _centre_and_size(followed)
    candidates = [i for i in range(len(boxes)) if matches(boxes[i], followed, config)]
    if not candidates:
        return None
    return min(candidates, key=lambda i: float(np.linalg.norm(_centre_and_size(boxes[i])[0] - last_centre)))
