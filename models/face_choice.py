"""Which face of a photo is the subject: every face found, scored the way a person picks one.

A press photo of a speaker at a podium with a man seated in the foreground: the largest face is the seated man,
at the frame's edge, turned and out of focus; a person takes the speaker, who is central, sharp and frontal.
So a face's score weighs its size (relative to the largest, compressed: twice the size is not twice as likely the
subject), its closeness to the centre, its sharpness (relative to the sharpest), frontalness and the detector's
confidence. When the two best are close, the choice is a close call and the caller is asked (POST /api/targets).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from models.align import align_face
from models.landmarks import Box, detect_scored_boxes, landmarks_in_box, to_gray
from models.photo_check import focus_measure, landmark_yaw

# Detection runs with the photo's long side at each of these sizes: HOG finds faces from ~80 px, so the 2048 pass
# finds faces down to 4 % of the long side (a 40 px speaker in a 1024 px photo); the two passes score a face
# differently (a turned face can pass at one size only: the podium speaker scores 0.08 at 1024, -0.14 at 2048).
# ~0.5 s for both on one core.
DETECT_LONG_SIDES = (1024, 2048)
# Below dlib's own 0: turned faces score -0.2-0.1 (the podium speaker, the turned man in the car still); the
# first false detections (a painted face, hands) come at -0.33 and lower on the evaluation set's photos.
DETECT_THRESHOLD = -0.25
# ... but a mission patch on the astronaut's sleeve scores -0.01 too. A face scoring under CONFIRM_BELOW must be
# confirmed by a second, neural detector (BlazeFace, through `confirm`, on its aligned crop: it rejects the patch
# and keeps every real face of the evaluation set's tuning photos); without one, dlib's own threshold (0) holds.
CONFIRM_BELOW = 0.5
UNCONFIRMED_THRESHOLD = 0.0
CONFIRM_CROP_PX = 256
SAME_FACE_OVERLAP = 0.3  # boxes from the two passes overlapping this much (intersection over union) are one face
MAX_FACES = 8  # a crowd: the most confident faces are kept
WEIGHTS = {"size": 0.30, "centre": 0.25, "sharpness": 0.20, "frontal": 0.15, "confidence": 0.10}
CLOSE_CALL = 0.08  # the runner-up within this of the best (scores in 0-1): ask which one
FRONTAL_ZERO_DEG = 60.0  # a face turned this far scores 0 for frontalness
CENTRE_VERTICAL_WEIGHT = 0.5  # a subject is often above or below the centre (standing, sitting): counts half
CONFIDENCE_FULL = 2.0  # dlib HOG score at which confidence counts fully (clear frontal faces score 1.5-3)
#                       (scores below 0, see DETECT_THRESHOLD, count as 0)


@dataclass(frozen=True)
class FoundFace:
    box: Box  # left, top, right, bottom in photo pixels
    landmarks: np.ndarray  # (68, 2) float32, photo pixels
    confidence: float  # the detector's score


@dataclass(frozen=True)
class ScoredFace:
    face: FoundFace
    parts: dict[str, float]  # each criterion in 0-1 (see WEIGHTS)
    score: float  # the weighted sum, 0-1

    def as_dict(self) -> dict:
        return {"box": [round(v) for v in self.face.box], "score": round(self.score, 3),
                "parts": {name: round(value, 3) for name, value in self.parts.items()}}


@dataclass(frozen=True)
class FaceChoice:
    faces: tuple[ScoredFace, ...]  # left to right: a face's index is stable for a given photo
    chosen: int  # index into faces of the subject
    close_call: bool  # another face scored within CLOSE_CALL of the chosen one

    @property
    def face(self) -> FoundFace:
        return self.faces[self.chosen].face


class FaceIndexError(ValueError):
    """The caller asked for a face the photo does not have; `index` says which of the photos (as NoFaceError)."""

    def __init__(self, message: str, index: int = 0) -> None:
        super().__init__(message)
        self.index = index


Confirm = Callable[[np.ndarray], bool]  # an aligned RGB face crop -> whether a face detector sees a face in it


def find_faces(rgb: np.ndarray, confirm: Confirm | None = None) -> list[FoundFace]:
    """Every face HOG finds in the photo (at most MAX_FACES, the most confident), left to right; weak detections
    only where `confirm` sees a face too (see CONFIRM_BELOW)."""
    gray = to_gray(rgb)
    found: list[tuple[Box, float, np.ndarray, float]] = []  # box (photo px), score, the pass's image, its scale
    for side in DETECT_LONG_SIDES:
        scale = side / max(gray.shape)
        image = cv2.resize(gray, None, fx=scale, fy=scale,
                           interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA) if scale != 1 else gray
        for box, score in detect_scored_boxes(image, DETECT_THRESHOLD):
            photo_box = tuple(v / scale for v in box)
            same = [i for i, other in enumerate(found) if _overlap(photo_box, other[0]) > SAME_FACE_OVERLAP]
            if not same:
                found.append((photo_box, score, image, scale))
            elif score > found[same[0]][1]:  # the pass that sees the face best places it
                found[same[0]] = (photo_box, score, image, scale)
    faces = []
    for box, score, image, scale in sorted(found, key=lambda item: item[1], reverse=True):
        face = FoundFace(box, landmarks_in_box(image, tuple(v * scale for v in box)) / scale, score)
        if _confirmed(rgb, face, confirm):
            faces.append(face)
        if len(faces) == MAX_FACES:
            break
    return sorted(faces, key=lambda face: (face.box[0] + face.box[2]) / 2)


def _confirmed(rgb: np.ndarray, face: FoundFace, confirm: Confirm | None) -> bool:
    if face.confidence >= CONFIRM_BELOW:
        return True
    if confirm is None:
        return face.confidence >= UNCONFIRMED_THRESHOLD
    return confirm(align_face(rgb, face.landmarks, CONFIRM_CROP_PX)[0])


def _overlap(a: Box, b: Box) -> float:
    """Intersection over union of two boxes."""
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def score_faces(rgb: np.ndarray, faces: list[FoundFace]) -> list[ScoredFace]:
    height, width = rgb.shape[:2]
    gray = to_gray(rgb)
    widths = [face.box[2] - face.box[0] for face in faces]
    focus = [focus_measure(gray, face.landmarks) for face in faces]
    scored = []
    for face, face_width, sharp in zip(faces, widths, focus, strict=True):
        centre_x, centre_y = face.landmarks[27:36].mean(axis=0)  # the nose: the face's middle
        off_x = (centre_x - width / 2) / (width / 2)
        off_y = CENTRE_VERTICAL_WEIGHT * (centre_y - height / 2) / (height / 2)
        parts = {
            "size": float(np.sqrt(face_width / max(widths))),
            "centre": float(max(0.0, 1.0 - np.hypot(off_x, off_y))),
            "sharpness": sharp / max(max(focus), 1e-6),
            "frontal": max(0.0, 1.0 - abs(landmark_yaw(face.landmarks, (height, width))) / FRONTAL_ZERO_DEG),
            "confidence": float(np.clip(face.confidence / CONFIDENCE_FULL, 0.0, 1.0)),
        }
        scored.append(ScoredFace(face, parts, sum(WEIGHTS[name] * value for name, value in parts.items())))
    return scored


def choose_face(rgb: np.ndarray, index: int | None = None, confirm: Confirm | None = None) -> FaceChoice | None:
    """The photo's faces and the subject among them (or face `index`, the caller's pick); None without a face."""
    faces = find_faces(rgb, confirm)
    if not faces:
        return None
    scored = tuple(score_faces(rgb, faces))
    ranked = sorted(range(len(scored)), key=lambda i: scored[i].score, reverse=True)
    close = len(ranked) > 1 and scored[ranked[0]].score - scored[ranked[1]].score < CLOSE_CALL
    if index is None:
        return FaceChoice(scored, ranked[0], close)
    if not 0 <= index < len(scored):
        count = f"{len(scored)} faces (0-{len(scored) - 1})" if len(scored) > 1 else "one face (0)"
        raise FaceIndexError(f"the photo has {count}: there is no face {index}")
    return FaceChoice(scored, index, False)
