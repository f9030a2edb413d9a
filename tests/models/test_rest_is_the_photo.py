"""At rest the avatar is the photo (issue 31): a caller holding still at their neutral face sees the target photo
itself, on every photo of the evaluation set: turned, side-lit, downcast, grayscale, small and group photos."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from evaluation import evalset
from evaluation.motion import read_clip
from evaluation.rest_check import rest_difference
from models.pipeline import FrameJob, PipelineConfig, ReenactmentPipeline

MAX_FAR_OFF = 0.004  # share of the face region more than 60/255 off the aligned photo (was 0.4-6.5 % on 16 of 19)
STILL_FRAMES = 6  # the calibration frame and five more of the same picture


@pytest.fixture(scope="module")
def pipeline() -> ReenactmentPipeline:
    return ReenactmentPipeline(PipelineConfig(generator="mesh", output_size=256))


@pytest.fixture(scope="module")
def still_driver() -> np.ndarray:
    return read_clip(evalset.fetched_path("single_face.mp4"), 1)[0]  # a caller at a neutral face, eyes open


PHOTOS = [item.name for item in evalset.photos() if "no face found" not in item.covers]


def test_the_set_covers_the_hard_cases() -> None:
    covered = {case for item in evalset.photos() if item.name in PHOTOS for case in item.covers}
    assert len(PHOTOS) >= 12
    assert {"head turned 20-40 deg", "hard side light", "closed or downcast eyes", "grayscale",
            "small face in a large photo"} <= covered


@pytest.mark.parametrize("name", PHOTOS)
def test_a_still_caller_sees_the_photo(name: str, pipeline: ReenactmentPipeline, still_driver: np.ndarray) -> None:
    rgb = cv2.cvtColor(cv2.imread(str(evalset.fetched_path(name))), cv2.COLOR_BGR2RGB)
    target = pipeline.prepare_target([rgb])
    driver = pipeline.new_driver()
    for index in range(STILL_FRAMES):
        avatar = pipeline.process([FrameJob(driver, target, still_driver, index / 30)])[0].image
        share = rest_difference(avatar, target.images[0], target.landmarks[0])
        assert share <= MAX_FAR_OFF, f"frame {index}: {100 * share:.2f} % of the face far off the photo"
