"""Per-frame motion signals from an independent landmarker (dlib's 68 points), never the pipeline's own.

Head yaw and pitch come from cv2.solvePnP on a generic 3-D head (eleven rigid points of the 68), roll from the eye
line, mouth opening is the inner-lip gap over the mouth width, eye opening the eye aspect ratio.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from models.face_measures import eye_aspect_ratio
from models.facemesh.canonical import canonical_face
from models.facemesh.mapping import to_ibug68
from models.landmarks import detect_landmarks

SIGNALS = ("yaw", "pitch", "roll", "mouth", "eyes")

# The head model for yaw and pitch: only points that expression hardly moves (nose bridge, nose tip, nostrils,
# eye corners), in 3-D from MediaPipe's canonical face through the FaceMesh -> iBUG table. The chin and the
# mouth corners are left out: with them, an opening mouth read as a nod (the avatar's "pitch" followed its
# own mouth opening at r = -0.91 on single_face.mp4). Camera axes (x right, y down, z away from the
# camera), so a frontal face has rotation ~identity and the angles never wrap.
HEAD_POINTS = np.array([27, 28, 29, 30, 31, 33, 35, 36, 39, 42, 45])


@functools.cache
def _head_model() -> np.ndarray:
    face = canonical_face().vertices * np.array([1.0, -1.0, -1.0], np.float32)  # y up, z to camera -> camera axes
    xy = to_ibug68(face[:, :2])
    z = to_ibug68(np.repeat(face[:, 2:], 2, axis=1))[:, 0]  # the same blend of each vertex's depth
    return np.column_stack([xy, z])[HEAD_POINTS].astype(np.float64)


def head_yaw_pitch(landmarks: np.ndarray, image_size: tuple[int, int]) -> tuple[float, float]:
    """(yaw, pitch) in degrees of a face in an image of (height, width), by solvePnP on the generic head.

    Focal length = image width, principal point at the centre, no distortion. Yaw > 0: the nose turns
    towards the image's right; pitch > 0: the nose turns down.
    """
    height, width = image_size
    camera = np.array([[width, 0, width / 2], [0, width, height / 2], [0, 0, 1]], np.float64)
    image_points = landmarks[HEAD_POINTS].astype(np.float64)
    ok, rvec, _ = cv2.solvePnP(_head_model(), image_points, camera, None, flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        return float("nan"), float("nan")
    rotation, _ = cv2.Rodrigues(rvec)
    # The face's forward direction (towards the camera, -z in the model) after rotation.
    forward = rotation @ np.array([0.0, 0.0, -1.0])
    yaw = np.degrees(np.arctan2(forward[0], -forward[2]))
    pitch = np.degrees(np.arctan2(forward[1], np.hypot(forward[0], forward[2])))
    return float(yaw), float(pitch)


def roll_degrees(landmarks: np.ndarray) -> float:
    """Angle of the line from the image-left eye centre to the image-right one (0: level)."""
    eyes = landmarks[42:48].mean(axis=0) - landmarks[36:42].mean(axis=0)
    return float(np.degrees(np.arctan2(eyes[1], eyes[0])))


def mouth_ratio(landmarks: np.ndarray) -> float:
    """Inner-lip gap (mean of the three inner lip pairs) over the mouth width (outer corners)."""
    gap = np.mean([np.linalg.norm(landmarks[a] - landmarks[b]) for a, b in ((61, 67), (62, 66), (63, 65))])
    return float(gap / max(np.linalg.norm(landmarks[54] - landmarks[48]), 1e-6))


def face_signals(landmarks: np.ndarray, image_size: tuple[int, int]) -> dict[str, float]:
    yaw, pitch = head_yaw_pitch(landmarks, image_size)
    return {"yaw": yaw, "pitch": pitch, "roll": roll_degrees(landmarks), "mouth": mouth_ratio(landmarks),
            "eyes": eye_aspect_ratio(landmarks)}


@dataclass
class SignalTrack:
    """dlib's landmarks and the signals of every frame of a sequence (NaN / None where dlib found no face)."""

    landmarks: list[np.ndarray | None]
    values: dict[str, np.ndarray]  # signal name -> (frames,) float64

    @property
    def found(self) -> np.ndarray:
        return np.array([points is not None for points in self.landmarks])

    def __len__(self) -> int:
        return len(self.landmarks)


def track_signals(frames: Iterable[np.ndarray]) -> SignalTrack:
    """Run dlib on every frame and measure the signals; angles are unwrapped along the sequence."""
    landmarks: list[np.ndarray | None] = []
    sizes: list[tuple[int, int]] = []
    for frame in frames:
        landmarks.append(detect_landmarks(frame))
        sizes.append(frame.shape[:2])
    return signal_track(landmarks, sizes)


def signal_track(landmarks: list[np.ndarray | None], sizes: Sequence[tuple[int, int]]) -> SignalTrack:
    """The signals of a sequence of 68-point sets (None: no face), each in an image of the given (height, width);
    angles are unwrapped along the sequence."""
    rows = [face_signals(points, size) if points is not None else dict.fromkeys(SIGNALS, np.nan)
            for points, size in zip(landmarks, sizes, strict=True)]
    values = {name: np.array([row[name] for row in rows], np.float64) for name in SIGNALS}
    for name in ("yaw", "pitch", "roll"):
        values[name] = unwrap_degrees(values[name])
    return SignalTrack(landmarks, values)


def unwrap_degrees(angles: Sequence[float] | np.ndarray) -> np.ndarray:
    """Remove 360-degree jumps between consecutive measured angles (NaN frames are skipped, kept NaN)."""
    angles = np.asarray(angles, np.float64).copy()
    valid = ~np.isnan(angles)
    if valid.any():
        angles[valid] = np.degrees(np.unwrap(np.radians(angles[valid])))
    return angles
