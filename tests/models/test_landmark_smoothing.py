"""The per-session One Euro filter on real FaceMesh tracks: less jitter, no visible lag."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.facemesh_reference import decode
from models.face_measures import mouth_opening
from models.facemesh.tracker import MeshLandmarkStage, MeshTrackState
from models.landmarks import face_size
from models.smoothing import OneEuroFilter

FPS = 30.0


@pytest.fixture(scope="module")
def tracks() -> tuple[np.ndarray, np.ndarray]:
    """Raw and smoothed 68-point tracks of every frame of a real talking-face clip (72 frames)."""
    stage, state, smoother = MeshLandmarkStage(), MeshTrackState(), OneEuroFilter()
    raw, smoothed = [], []
    for index, frame in enumerate(decode("single_face.mp4")):
        points = stage.track([frame], [state])[0]
        assert points is not None, f"face lost at frame {index}"
        raw.append(points)
        smoothed.append(smoother(points, index / FPS, scale=face_size(points)))
    return np.array(raw), np.array(smoothed)


def _jitter(track: np.ndarray) -> float:
    """Mean second difference per point (frame-to-frame shake), in inter-ocular distances."""
    return float(np.abs(track[2:] - 2 * track[1:-1] + track[:-2]).mean() / np.mean([face_size(p) for p in track]))


def _lag(reference: np.ndarray, follower: np.ndarray, max_lag: int = 5) -> int:
    """Frames by which `follower` trails `reference` (best cross-correlation)."""
    a, b = reference - reference.mean(), follower - follower.mean()
    return max(range(max_lag + 1), key=lambda k: float(np.dot(a[:len(a) - k], b[k:])))


def test_smoothing_removes_most_jitter(tracks) -> None:
    raw, smoothed = tracks
    # Measured: 0.0054 -> 0.0021 on this clip (and 0.0138 -> 0.0054 on WolfgangLanger_Pexels.mp4).
    assert _jitter(smoothed) < 0.6 * _jitter(raw)


def test_smoothing_adds_no_lag_to_the_mouth(tracks) -> None:
    raw, smoothed = tracks
    raw_mouth = np.array([mouth_opening(p) for p in raw])
    smoothed_mouth = np.array([mouth_opening(p) for p in smoothed])
    assert np.std(raw_mouth) > 0.02  # the clip really talks: there is motion to lag behind
    assert _lag(raw_mouth, smoothed_mouth) == 0
    assert np.corrcoef(raw_mouth, smoothed_mouth)[0, 1] > 0.95  # measured 0.98
