"""What the warp baseline's output looks like on a real clip: the target's identity, the driver's mouth."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest

from evaluation.identity import cosine_similarity, face_embedding
from models.assets import gallery, sample_media
from models.face_measures import mouth_opening
from models.landmarks import detect_landmarks
from models.pipeline import FrameJob, PipelineConfig, ReenactmentPipeline, TargetFace

SIZE = 256
WINDOW = range(210, 270)  # 2 s of the clip where she talks and smiles: real mouth motion


def _frames(indices: set[int]) -> dict[int, np.ndarray]:
    frames = {}
    with av.open(str(sample_media("WolfgangLanger_Pexels.mp4"))) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index in indices:
                frames[index] = frame.to_ndarray(format="rgb24")
            if index >= max(indices):
                break
    return frames


@pytest.fixture(scope="module")
def clip() -> dict[int, np.ndarray]:
    return _frames({0, *WINDOW})


@pytest.fixture(scope="module")
def driven(clip) -> tuple[TargetFace, list[np.ndarray]]:
    """The astronaut driven by frame 0 (neutral) and then the window, as a live session would see it."""
    pipeline = ReenactmentPipeline(PipelineConfig(generator="warp", output_size=SIZE))
    target = pipeline.prepare_target([cv2.cvtColor(cv2.imread(str(gallery()[0].path)), cv2.COLOR_BGR2RGB)])
    driver = pipeline.new_driver()
    assert pipeline.process([FrameJob(driver, target, clip[0])])[0].face_found
    outputs = []
    for start in range(WINDOW.start, WINDOW.stop, 4):
        batch = [clip[i] for i in range(start, min(start + 4, WINDOW.stop))]
        outputs += [r.image for r in pipeline.process([FrameJob(driver, target, f) for f in batch])]
    return target, outputs


def test_outputs_keep_the_targets_identity(clip, driven) -> None:
    target, outputs = driven
    target_id = face_embedding(target.images[0])
    driver_ids = [face_embedding(clip[i]) for i in (WINDOW[0], WINDOW[30])]
    assert target_id is not None and all(d is not None for d in driver_ids)
    for output, driver_id in zip(outputs[::30], driver_ids, strict=True):
        output_id = face_embedding(output)
        assert output_id is not None
        to_target, to_driver = cosine_similarity(output_id, target_id), cosine_similarity(output_id, driver_id)
        assert to_target > to_driver + 0.05, (to_target, to_driver)


def test_output_mouth_follows_the_driver(clip, driven) -> None:
    _, outputs = driven
    driver_mouth, output_mouth = [], []
    for index, output in zip(WINDOW, outputs, strict=True):
        source, rendered = detect_landmarks(clip[index]), detect_landmarks(output)
        if source is not None and rendered is not None:
            driver_mouth.append(mouth_opening(source))
            output_mouth.append(mouth_opening(rendered))
    assert len(driver_mouth) >= 50
    assert np.std(driver_mouth) > 0.02  # the window really has mouth motion to follow
    correlation = np.corrcoef(driver_mouth, output_mouth)[0, 1]
    assert correlation > 0.5, correlation
