"""3-D landmark transformer: the driver's head motion and expression, moved onto the target's own mesh.

MarioNETte's landmark-transformer idea, in 3-D:
1. head pose: the driver's current mesh vs their calibrated neutral mesh, by weighted Procrustes on the
   canonical model's stable vertices (rotation incl. yaw and pitch, scale, translation);
2. expression: the current mesh brought back into the neutral's pose, minus the neutral, expressed in
   the canonical head frame and rescaled per axis from the driver's face proportions to the target's
   (a wide driver face must not widen the target), then put into the target's head frame;
3. eyes: each eye's opening is transferred as a ratio of the driver's own open eye (a running
   reference the pipeline keeps per session, so a neutral face calibrated while looking down or blinking
   does not cap the avatar's eyes), so a closed driver eye closes the target's eye whatever the sizes;
4. mouth: the driver's opening (inner-lip gap over mouth width, a ratio: the same on any face size) becomes the
   target's, times the caller's gain (models/mesh3d/caller_range.py: a caller whose small webcam face shows a
   small range of openings opens the avatar's mouth as far as a caller seen up close), by dropping the lower lip
   and jaw; transferring raw offsets instead shrank openings on webcams (mouth amp 0.33 on a 400x300 clip);
5. the target's expressive mesh is rotated and scaled by the driver's relative pose about its own
   centre and shifted by the driver's (rescaled) translation; projection is orthographic.

All meshes are (468, 3) FaceMesh points in image axes (x right, y down, z away from the camera), pixels.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from models.facemesh.canonical import canonical_face
from models.mesh3d.pose import Pose, procrustes

# Eyelid vertex pairs (upper, lower), outer corner to inner corner, for the subject's right and left eye.
RIGHT_EYE_UPPER = (246, 161, 160, 159, 158, 157, 173)
RIGHT_EYE_LOWER = (7, 163, 144, 145, 153, 154, 155)
LEFT_EYE_UPPER = (466, 388, 387, 386, 385, 384, 398)
LEFT_EYE_LOWER = (249, 390, 373, 374, 380, 381, 382)
EYELIDS = ((RIGHT_EYE_UPPER, RIGHT_EYE_LOWER), (LEFT_EYE_UPPER, LEFT_EYE_LOWER))
EYE_CORNERS = ((33, 133), (263, 362))  # outer, inner
# eye_openness of a closed eye: the eye network's lids keep a small gap (fitted on two clips: ours = 0.016 to
# 0.048 + 0.6 x dlib's eye aspect ratio), so that gap, not zero, is "closed".
CLOSED_EYE = 0.03
# Of a blink's closing, the upper lid's part (it sweeps down over the eye; the lower lid rises a little). The
# renderer shows the eye opening as the eyeball the lids still leave uncovered, with the same split.
UPPER_LID_SHARE = 0.8
# Mouth: inner-lip vertex pairs (upper, lower) and the outer corners; the lips' vertex rings (MediaPipe's).
MOUTH_GAP = ((13, 14), (82, 87), (312, 317), (81, 178), (311, 402))
MOUTH_CORNERS = (61, 291)
UPPER_LIP = (185, 40, 39, 37, 0, 267, 269, 270, 409, 191, 80, 81, 82, 13, 312, 311, 310, 415)
LOWER_LIP = (146, 91, 181, 84, 17, 314, 405, 321, 375, 95, 88, 178, 87, 14, 317, 402, 318, 324)
# The inner lips as a ring: a corner, the upper lip, the other corner, the lower lip back.
INNER_LIPS = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95)
INNER_LIP_PAIRS = tuple(zip(INNER_LIPS[1:10], INNER_LIPS[:10:-1], strict=True))  # (upper, lower) facing vertices
# Each eye's lid margins as a ring: outer corner, upper lid, inner corner, lower lid back.
EYE_RINGS = tuple((outer, *upper, inner, *lower[::-1])
                  for (upper, lower), (outer, inner) in zip(EYELIDS, EYE_CORNERS, strict=True))
IMAGE_AXES = np.array([1.0, -1.0, -1.0], np.float32)  # canonical (y up, z to the camera) -> image axes


@dataclass(frozen=True)
class TransferConfig:
    scale_range: tuple[float, float] = (0.8, 1.25)  # head scale relative to the neutral face
    max_translation: float = 0.15  # of the output size: the face stays in frame
    max_eye_opening: float = 1.2  # eye opening vs the target's rest: its photo cannot show more eyeball
    max_mouth_opening: float = 0.7  # inner-lip gap over mouth width: a wide yawn, never a dislocated jaw
    output_size: int = 256


@dataclass(frozen=True)
class HeadMotion:
    """The driver's head motion, to apply to anything that moves with the head (hair, ears)."""

    rotation: np.ndarray  # (3, 3) in image axes
    scale: float
    pivot: np.ndarray  # (3,) the target's head centre, target pixels
    shift: np.ndarray  # (3,) translation in target pixels

    def apply(self, points: np.ndarray) -> np.ndarray:
        return (points - self.pivot) @ self.rotation.T * self.scale + self.pivot + self.shift


@dataclass(frozen=True)
class DrivenMesh:
    points: np.ndarray  # (468, 3) the target's mesh with the driver's expression and pose, target pixels
    motion: HeadMotion


@functools.cache
def _canonical_image_axes() -> tuple[np.ndarray, np.ndarray]:
    face = canonical_face()
    return face.vertices * IMAGE_AXES, face.procrustes_weight_vector()


def head_frame(mesh: np.ndarray) -> Pose:
    """The similarity from the canonical face (image axes, cm) to this mesh."""
    canonical, weights = _canonical_image_axes()
    return procrustes(canonical, mesh, weights)


def _extent(mesh: np.ndarray, frame: Pose) -> np.ndarray:
    """Face width, height and depth in the canonical head frame (robust 2-98 % range)."""
    local = frame.invert(mesh)
    low, high = np.percentile(local, [2, 98], axis=0)
    return np.maximum(high - low, 1e-3)


class MeshTransfer:
    """Drives one target mesh; build once per target (it caches the target's head frame)."""

    def __init__(self, target: np.ndarray, config: TransferConfig = TransferConfig()) -> None:
        self.config = config
        self.target = np.asarray(target, np.float64)
        self.target_frame = head_frame(self.target)
        self.target_extent = _extent(self.target, self.target_frame)
        _, self.weights = _canonical_image_axes()
        self.jaw = _jaw_weights()
        self.target_mouth = mouth_openness(self.target)

    def drive(self, current: np.ndarray, neutral: np.ndarray, open_eyes: np.ndarray | None = None,
              mouth_gain: float = 1.0, mouth_closed: float | None = None) -> DrivenMesh:
        """The target's mesh doing what `current` does relative to `neutral` (the driver's meshes). `open_eyes`:
        the driver's eye openness (`eye_openness`) when their eyes are open, per eye; default the neutral's.
        `mouth_gain`: the caller's mouth-range gain (caller_range.MouthRange), 1 = as measured. `mouth_closed`:
        the caller's closed mouth (`mouth_openness`) from their own range; the opening is read from it where it
        is below the neutral's (a caller calibrated mid-word: their closing mouth then still closes the avatar's)."""
        current, neutral = np.asarray(current, np.float64), np.asarray(neutral, np.float64)
        relative = procrustes(neutral, current, self.weights)
        in_neutral_pose = relative.invert(current)
        neutral_frame = head_frame(neutral)
        # Expression offsets: driver pixels -> canonical units -> per-axis target proportions -> target pixels.
        delta = (in_neutral_pose - neutral) @ neutral_frame.rotation / neutral_frame.scale
        delta *= self.target_extent / _extent(neutral, neutral_frame)
        expressive = self.target + delta @ self.target_frame.rotation.T * self.target_frame.scale
        closed = mouth_openness(neutral) if mouth_closed is None else min(mouth_openness(neutral), mouth_closed)
        opening = (mouth_openness(in_neutral_pose) - closed) * mouth_gain
        self._open_mouth_like(expressive, self.target_mouth + opening)
        reference = eye_openness(neutral)
        if open_eyes is not None:  # the neutral face may have been calibrated squinting, never wider than open
            reference = np.maximum(reference, open_eyes)
        # One reference for both eyes: a person's eyes open alike, and per-eye references taken from a turned or
        # tilted first frame (0.13 vs 0.17 seen) made equally closed driver eyes close the avatar's unevenly (a wink).
        reference = np.full(2, reference.mean())
        closing = (eye_openness(in_neutral_pose) - CLOSED_EYE) / np.maximum(reference - CLOSED_EYE, 1e-3)
        self._open_eyes_like(expressive, closing)

        scale = float(np.clip(relative.scale, *self.config.scale_range))
        pivot = self.target_frame.centre_b
        ratio = self.target_frame.scale / neutral_frame.scale
        shift = (relative.centre_b - relative.centre_a) * ratio
        limit = self.config.max_translation * self.config.output_size
        shift[:2] = np.clip(shift[:2], -limit, limit)
        shift[2] = 0.0
        motion = HeadMotion(relative.rotation, scale, pivot, shift)
        return DrivenMesh(motion.apply(expressive).astype(np.float32), motion)

    def _open_mouth_like(self, expressive: np.ndarray, wanted: float) -> None:
        """In place: the lower lip and jaw move along the target's head-down axis until the inner-lip gap over
        the mouth width is `wanted` (within 0 .. max_mouth_opening)."""
        wanted = float(np.clip(wanted, 0.0, self.config.max_mouth_opening))
        width = float(np.linalg.norm(expressive[MOUTH_CORNERS[0]] - expressive[MOUTH_CORNERS[1]]))
        down = self.target_frame.rotation[:, 1]  # canonical y (down, image axes) in the target's frame
        # Lips the expression offsets pushed past each other (a caller calibrated mid-word who then closes their
        # mouth) have a negative gap along the head's down axis: measured so, the jaw moves them apart again.
        # (mouth_openness's unsigned gap read them as open and left them crossed.)
        crossed = float(np.mean([(expressive[lower] - expressive[upper]) @ down for upper, lower in MOUTH_GAP]))
        gap = crossed if crossed < 0.0 else _lip_gap(expressive)
        extra = wanted * width - gap
        if wanted <= 0.0:  # closed: lips meet, never cross
            extra = max(extra, -gap)
        expressive += np.outer(self.jaw * extra, down)

    def _open_eyes_like(self, expressive: np.ndarray, openness: np.ndarray) -> None:
        """In place: each target eye opens by the driver's ratio to their open eye, the upper lid doing
        UPPER_LID_SHARE of the closing (a blink is the upper lid coming down, not both lids meeting halfway)."""
        for (upper, lower), ratio in zip(EYELIDS, openness, strict=True):
            up, low = list(upper), list(lower)
            ratio = float(np.clip(ratio, 0.0, self.config.max_eye_opening))
            middle = (expressive[up] + expressive[low]) / 2
            gap = self.target[low] - self.target[up]  # the target's own lid gap at rest, upper to lower lid
            closing = 1.0 - ratio  # negative: opened wider than at rest
            expressive[up] = middle - gap / 2 + UPPER_LID_SHARE * closing * gap
            expressive[low] = middle + gap / 2 - (1 - UPPER_LID_SHARE) * closing * gap


def with_mouth_of(neutral: np.ndarray, mesh: np.ndarray) -> np.ndarray:
    """`neutral` with its mouth and jaw (the vertices that move with the lips) taken from `mesh`, moved onto the
    neutral's head pose first (a similarity fitted on the rigid points, as drive() fits the pose): the pose and the
    eyes stay the neutral's."""
    _, weights = _canonical_image_axes()
    mesh, neutral = np.asarray(mesh, np.float64), np.asarray(neutral, np.float64)
    posed = procrustes(neutral, mesh, weights).invert(mesh)
    mouth = (_jaw_weights() > 0) | np.isin(np.arange(len(neutral)), list(UPPER_LIP))
    result = neutral.copy()
    result[mouth] = posed[mouth]
    return result.astype(np.float32)


def _lip_gap(mesh: np.ndarray) -> float:
    return float(np.mean([np.linalg.norm(mesh[a] - mesh[b]) for a, b in MOUTH_GAP]))


def mouth_openness(mesh: np.ndarray) -> float:
    """Mean inner-lip gap over the mouth-corner distance (0: lips together)."""
    return _lip_gap(mesh) / max(float(np.linalg.norm(mesh[MOUTH_CORNERS[0]] - mesh[MOUTH_CORNERS[1]])), 1e-6)


@functools.cache
def _jaw_weights() -> np.ndarray:
    """(468,) how far each vertex moves with the lower jaw: 1 for the lower lip and the chin, 0 for the upper lip
    and everything above the mouth corners, a ramp in between (the cheeks beside the mouth stretch)."""
    canonical, _ = _canonical_image_axes()
    y = canonical[:, 1]  # image axes: down
    corners, chin_top = y[list(MOUTH_CORNERS)].mean(), y[17]
    weights = np.clip((y - corners) / max(chin_top - corners, 1e-6), 0.0, 1.0)
    weights[list(LOWER_LIP)] = 1.0
    weights[list(UPPER_LIP)] = 0.0
    weights[list(MOUTH_CORNERS)] = 0.5
    return weights


def eye_openness(mesh: np.ndarray) -> np.ndarray:
    """(2,) per eye (subject's right, left): mean lid gap over the eye's corner distance."""
    values = []
    for (upper, lower), (outer, inner) in zip(EYELIDS, EYE_CORNERS, strict=True):
        gap = np.linalg.norm(mesh[list(upper)] - mesh[list(lower)], axis=1).mean()
        values.append(gap / max(float(np.linalg.norm(mesh[outer] - mesh[inner])), 1e-6))
    return np.array(values)
