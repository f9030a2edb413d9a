"""Training augmentation on a real frame: the flipped landmarks are where a detector finds them."""

from __future__ import annotations

import numpy as np

from evaluation.facemesh_reference import decode, nme
from models.landmarks import detect_landmarks
from training.augment import AugmentConfig, augment_sample


def _frame() -> np.ndarray:
    return next(decode("single_face.mp4"))


def test_flip_mirrors_the_landmarks_with_the_image() -> None:
    frame = _frame()
    points = detect_landmarks(frame)
    assert points is not None
    frames, marks = augment_sample(frame[None], points[None], np.random.default_rng(0), AugmentConfig(flip=1.0))
    found = detect_landmarks(frames[0])
    assert found is not None
    # Same face, mirrored: the mirrored table must match a fresh detection (a wrong order scores > 0.5).
    assert nme(marks[0], found) < 0.08
    assert nme(points, found) > 0.3  # and the face really moved: it is not symmetric about the centre


def test_one_look_per_sample_that_changes_the_colours() -> None:
    frame = _frame()
    points = np.zeros((68, 2), np.float32)
    frames, _ = augment_sample(np.stack([frame, frame]), np.stack([points, points]), np.random.default_rng(3),
                               AugmentConfig(flip=0.0))
    assert np.array_equal(frames[0], frames[1])  # target and driver frames get the same transform
    assert np.abs(frames[0].astype(int) - frame.astype(int)).mean() > 5
    still, _ = augment_sample(frame[None], points[None], np.random.default_rng(3),
                              AugmentConfig(flip=0.0, hue_degrees=0.0, saturation=(1, 1), brightness=(1, 1),
                                            contrast=(1, 1)))
    assert np.abs(still[0].astype(int) - frame.astype(int)).max() <= 3  # only HSV round-off without change
