"""68-point face landmarks with dlib: HOG face detection, shape predictor, and frame-to-frame tracking.

Detection is the expensive part (~35 ms at 512 px), so a tracked face re-uses the box of its previous
landmarks and full detection runs only every `detect_every` frames or when tracking looks lost.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import cv2
import dlib
import numpy as np

from models.assets import SHAPE_PREDICTOR_68, dlib_model_path

DETECT_WIDTH = 320  # frames are downscaled to this width for detection
MIN_FACE_FRACTION = 0.08  # faces narrower than this fraction of the frame are ignored
Box = tuple[float, float, float, float]  # left, top, right, bottom in pixels
REGION_FACE_PX = 90  # tracking window scale: dlib's HOG finds faces from ~80 px


@functools.cache
def _detector() -> dlib.fhog_object_detector:
    return dlib.get_frontal_face_detector()


@functools.cache
def _predictor() -> dlib.shape_predictor:
    return dlib.shape_predictor(str(dlib_model_path(SHAPE_PREDICTOR_68)))


_model_lock = threading.Lock()  # dlib objects are shared; callers in several threads take turns


def to_gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb


def detect_face_boxes(gray: np.ndarray, upsample_small: bool = True) -> list[Box]:
    """Face boxes (left, top, right, bottom) in gray's pixel coordinates, largest first."""
    scale = min(1.0, DETECT_WIDTH / gray.shape[1])
    small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else gray
    with _model_lock:
        rects = _detector()(small, 0)
        if not rects and upsample_small:
            rects = _detector()(small, 1)  # small faces: one upsampling pass, 4x the cost
    boxes = [(r.left() / scale, r.top() / scale, r.right() / scale, r.bottom() / scale) for r in rects]
    boxes = [b for b in boxes if (b[2] - b[0]) >= MIN_FACE_FRACTION * gray.shape[1]]
    return sorted(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]), reverse=True)


def detect_scored_boxes(gray: np.ndarray, threshold: float = 0.0) -> list[tuple[Box, float]]:
    """Every face box HOG finds in `gray` at its own scale (faces from ~80 px) scoring above `threshold` (dlib's
    default: 0), with the detector's score."""
    with _model_lock:
        rects, scores, _ = _detector().run(gray, 0, threshold)
    return [((float(r.left()), float(r.top()), float(r.right()), float(r.bottom())), float(score))
            for r, score in zip(rects, scores, strict=True)]


def detect_in_region(gray: np.ndarray, near: Box) -> Box | None:
    """Confirm the face near its last position: HOG on a small window around it (a few ms, not ~30)."""
    left, top, right, bottom = near
    width, height = right - left, bottom - top
    x0, y0 = max(0, int(left - 0.5 * width)), max(0, int(top - 0.5 * height))
    x1, y1 = min(gray.shape[1], int(right + 0.5 * width)), min(gray.shape[0], int(bottom + 0.5 * height))
    if x1 - x0 < 16 or y1 - y0 < 16:
        return None
    scale = min(1.0, REGION_FACE_PX / max(width, 1.0))  # the face ends up ~REGION_FACE_PX wide
    window = cv2.resize(gray[y0:y1, x0:x1], None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    with _model_lock:
        rects = _detector()(window, 0)
    if not rects:
        return None
    r = max(rects, key=lambda r: r.width() * r.height())
    return (x0 + r.left() / scale, y0 + r.top() / scale, x0 + r.right() / scale, y0 + r.bottom() / scale)


def landmarks_in_box(gray: np.ndarray, box: Box) -> np.ndarray:
    rect = dlib.rectangle(int(box[0]), int(box[1]), int(box[2]), int(box[3]))
    with _model_lock:
        shape = _predictor()(gray, rect)
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


def box_from_landmarks(landmarks: np.ndarray) -> Box:
    """The detector-style box for a set of landmarks (used to track without detecting)."""
    left, top = landmarks.min(axis=0)
    right, bottom = landmarks.max(axis=0)
    # dlib's boxes start around the brows; the landmark box is close to it, slightly wider.
    return float(left), float(top), float(right), float(bottom)


def detect_landmarks(rgb: np.ndarray) -> np.ndarray | None:
    """Landmarks (68, 2) of the largest face in an image, or None."""
    gray = to_gray(rgb)
    boxes = detect_face_boxes(gray)
    return landmarks_in_box(gray, boxes[0]) if boxes else None


PHOTO_MIN_SIDE = 480  # small photos are enlarged to this before detection (HOG misses faces under ~80 px)
PHOTO_FINE_PX = 2048  # second pass: the photo's long side at this size, so a 40 px face (in a 1024 px photo)
#                       becomes the ~80 px HOG needs; bounded cost (~1 s on 2 cores), and only when the first fails


def detect_photo_landmarks(rgb: np.ndarray) -> np.ndarray | None:
    """Landmarks of the largest face in a still photo of any size (a one-off, so accuracy over speed)."""
    scale = max(1.0, PHOTO_MIN_SIDE / min(rgb.shape[:2]))
    gray = to_gray(rgb)
    if scale > 1:
        gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    boxes = detect_face_boxes(gray)
    if boxes:
        return landmarks_in_box(gray, boxes[0]) / scale
    return _detect_small_face(to_gray(rgb))


def _detect_small_face(gray: np.ndarray) -> np.ndarray | None:
    """A face the 320 px pass is too coarse for (e.g. 86 px wide in an 817 px portrait): HOG on the photo
    enlarged to PHOTO_FINE_PX, any face size down to ~40 px."""
    scale = PHOTO_FINE_PX / max(gray.shape[:2])
    fine = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)
    with _model_lock:
        rects = _detector()(fine, 0)
    if not rects:
        return None
    r = max(rects, key=lambda r: r.width() * r.height())
    box = (r.left(), r.top(), r.right(), r.bottom())
    return landmarks_in_box(fine, box) / scale


class LandmarkTracker(Protocol):
    """What the pipeline needs from a per-stream landmark source (dlib today; a batched network later)."""

    landmarks: np.ndarray | None  # the last landmarks found (68, 2), None when the face is lost

    def update(self, rgb: np.ndarray, timings: dict[str, float] | None = None) -> np.ndarray | None: ...


@dataclass
class FaceTracker:
    """Per-stream tracking with dlib: HOG near the last face each frame, full detection every N frames."""

    detect_every: int = 10
    landmarks: np.ndarray | None = None
    frames_since_detect: int = 0

    def update(self, rgb: np.ndarray, timings: dict[str, float] | None = None) -> np.ndarray | None:
        """The face's landmarks in this frame, or None; adds its stage times to `timings` if given."""
        clock = _StageClock(timings)
        with clock("detect"):
            gray = to_gray(rgb)
        if self.landmarks is not None and self.frames_since_detect < self.detect_every:
            with clock("detect"):
                box = detect_in_region(gray, box_from_landmarks(self.landmarks))
            if box is not None:
                with clock("landmarks"):
                    tracked = landmarks_in_box(gray, box)
                if _plausible(self.landmarks, tracked):
                    self.landmarks = tracked
                    self.frames_since_detect += 1
                    return tracked
        with clock("detect"):
            boxes = detect_face_boxes(gray)
        self.frames_since_detect = 0
        with clock("landmarks"):
            self.landmarks = landmarks_in_box(gray, boxes[0]) if boxes else None
        return self.landmarks


class _StageClock:
    """Adds the wall time of `with clock(stage):` blocks to a shared dict (a no-op without one)."""

    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings = timings

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        if self.timings is None:
            yield
            return
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - start


def face_size(landmarks: np.ndarray) -> float:
    """A robust face scale: distance between the eye centres."""
    left_eye = landmarks[36:42].mean(axis=0)
    right_eye = landmarks[42:48].mean(axis=0)
    return float(np.linalg.norm(right_eye - left_eye))


def _plausible(previous: np.ndarray, current: np.ndarray) -> bool:
    """A tracked face should not jump or change size abruptly from one frame to the next."""
    size_prev, size_now = face_size(previous), face_size(current)
    if size_prev <= 1 or not 0.75 < size_now / size_prev < 1.33:
        return False
    shift = np.linalg.norm(current.mean(axis=0) - previous.mean(axis=0))
    return bool(shift < 0.5 * size_prev)
