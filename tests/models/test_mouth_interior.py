"""--mouth-interior caller: the caller's own mouth inside, fitted into the avatar's open lips (an option; the default
stays the painted cavity)."""

from __future__ import annotations

import cv2
import numpy as np

from evaluation import evalset
from evaluation.motion import read_clip
from models.generators.mouth_interior import paste_caller_mouth
from models.generators.paint import face_colours
from models.landmarks import detect_landmarks
from models.pipeline import FrameJob, PipelineConfig, ReenactmentPipeline

OPEN_FRAME = 57  # single_face.mp4: the caller's widest open mouth (dlib), teeth showing


def _render(mouth_interior: str, frames: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    pipeline = ReenactmentPipeline(PipelineConfig(generator="mesh", output_size=256, mouth_interior=mouth_interior))
    photo = cv2.cvtColor(cv2.imread(str(evalset.fetched_path("smiling_man.jpg"))), cv2.COLOR_BGR2RGB)
    target = pipeline.prepare_target([photo])
    driver = pipeline.new_driver()
    for index, frame in enumerate(frames):
        image = pipeline.process([FrameJob(driver, target, frame, index / 30)])[0].image
    return image, target.landmarks[0]


def test_the_callers_mouth_fills_the_open_mouth_and_nothing_else() -> None:
    frames = read_clip(evalset.fetched_path("single_face.mp4"), OPEN_FRAME + 1)
    painted, rest_points = _render("painted", frames)
    caller, _ = _render("caller", frames)
    assert PipelineConfig().mouth_interior == "painted"
    changed = np.abs(painted.astype(np.int16) - caller.astype(np.int16)).max(axis=2) > 12
    assert changed.sum() > 50  # the mouth's inside differs
    mouth = rest_points[48:68]
    x0, y0 = mouth.min(axis=0) - 25
    x1, y1 = mouth.max(axis=0) + 25
    ys, xs = np.nonzero(changed)
    assert ((xs > x0) & (xs < x1) & (ys > y0) & (ys < y1)).all()  # ... and only there


def test_a_closed_caller_mouth_gives_no_picture() -> None:
    frame = read_clip(evalset.fetched_path("single_face.mp4"), 1)[0]
    caller = detect_landmarks(frame)
    assert caller is not None
    closed = caller.copy()
    closed[[65, 66, 67]] = closed[[63, 62, 61]]  # inner lips together
    image = np.full((256, 256, 3), 128, np.uint8)
    rest = closed - closed.mean(axis=0) + 128  # the target at rest: lips together
    colours = face_colours(image, rest)
    avatar = rest.copy()
    avatar[[65, 66, 67], 1] += 12  # the avatar's mouth opens
    before = image.copy()
    assert paste_caller_mouth(image, avatar, frame, closed, colours) is None  # the caller's lips touch: no picture
    assert np.array_equal(image, before)
    opened = closed.copy()
    opened[[65, 66, 67], 1] += 8  # the caller's open by 8 px: their mouth is pasted
    assert paste_caller_mouth(image, avatar, frame, opened, colours) is not None
    assert not np.array_equal(image, before)
