"""The pipeline over real frames, and the offline CLI end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from loadtest.local_server import REPO_ROOT
from models.assets import gallery, sample_media
from models.pipeline import FrameJob, NoFaceError, PipelineConfig, ReenactmentPipeline


def read_rgb(path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def pipeline() -> ReenactmentPipeline:
    return ReenactmentPipeline(PipelineConfig(generator="warp", output_size=192))


def test_prepare_target_rejects_faceless_photos(pipeline: ReenactmentPipeline) -> None:
    with pytest.raises(NoFaceError, match="no face found in the photo"):
        pipeline.prepare_target([read_rgb(sample_media("free-mountain-vector-01.jpg"))])


def test_few_shot_target_keeps_every_photo(pipeline: ReenactmentPipeline) -> None:
    target = pipeline.prepare_target([read_rgb(e.path) for e in gallery()])
    assert len(target.images) == len(target.landmarks) == len(gallery())
    assert all(image.shape == (192, 192, 3) for image in target.images)


def test_batch_of_sessions_and_faceless_frames(pipeline: ReenactmentPipeline, talking_face_frames) -> None:
    target = pipeline.prepare_target([read_rgb(gallery()[0].path)])
    driver_a, driver_b = pipeline.new_driver(), pipeline.new_driver()
    blank = np.zeros((360, 640, 3), np.uint8)
    for frame in talking_face_frames[:5]:
        results = pipeline.process([FrameJob(driver_a, target, frame), FrameJob(driver_b, target, blank)])
        assert results[0].face_found and not results[1].face_found
        assert results[0].image.shape == results[1].image.shape == (192, 192, 3)
    # No face yet: the target at rest; after a face was seen: that session's last good frame.
    np.testing.assert_array_equal(results[1].image, target.images[0])
    last_good = results[0].image
    held = pipeline.process([FrameJob(driver_a, target, blank)])[0]
    assert not held.face_found
    np.testing.assert_array_equal(held.image, last_good)
    assert set(results[0].stage_seconds) >= {"landmarks", "generate"}


def test_calibration_resets_the_neutral_face(pipeline: ReenactmentPipeline, talking_face_frames) -> None:
    target = pipeline.prepare_target([read_rgb(gallery()[0].path)])
    driver = pipeline.new_driver()
    pipeline.process([FrameJob(driver, target, talking_face_frames[0])])
    first_neutral = driver.neutral.copy()
    pipeline.request_calibration(driver)
    pipeline.process([FrameJob(driver, target, talking_face_frames[60])])
    assert not driver.calibrate_next
    assert not np.allclose(driver.neutral, first_neutral)


def test_cli_writes_a_video(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    completed = subprocess.run(
        [sys.executable, "-m", "models.reenact", "--target", str(gallery()[0].path), "--target",
         str(gallery()[1].path), "--driver", str(sample_media("single_face.mp4")), "--out", str(out),
         "--max-frames", "20", "--size", "128", "--side-by-side"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    with av.open(str(out)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 20
    assert frames[0].shape == (128, 256, 3)


def test_cli_errors_are_one_clear_line(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "models.reenact", "--target", str(sample_media("free-mountain-vector-01.jpg")),
         "--driver", str(sample_media("single_face.mp4")), "--out", str(tmp_path / "x.mp4")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 2
    assert "no face found in the photo" in completed.stderr and "Traceback" not in completed.stderr
    completed = subprocess.run(
        [sys.executable, "-m", "models.reenact", "--target", "missing.jpg", "--driver", "x.mp4", "--out", "y.mp4"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert completed.returncode == 2 and "no such file: missing.jpg" in completed.stderr
