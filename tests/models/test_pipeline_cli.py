"""The pipeline over real frames, and the offline CLI end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from models.assets import REPO_ROOT, gallery, sample_media
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


def test_cli_prints_the_photo_check_and_takes_a_face(tmp_path: Path) -> None:
    group = sample_media("multi_face.jpg")
    run = [sys.executable, "-m", "models.reenact", "--target", str(group),
           "--driver", str(sample_media("single_face.mp4")), "--out", str(tmp_path / "out.mp4"),
           "--max-frames", "2", "--size", "128", "--generator", "warp", "--landmarks", "dlib"]
    completed = subprocess.run(run, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert f"{group}: 4 faces (0: [" in completed.stderr and "a close call" in completed.stderr
    assert "--face N picks another" in completed.stderr
    completed = subprocess.run([*run, "--face", "0"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0 and "using face 0;" in completed.stderr, completed.stderr
    completed = subprocess.run([*run, "--face", "7"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 2 and "there is no face 7" in completed.stderr, completed.stderr
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), cv2.resize(cv2.imread(str(gallery()[0].path)), (160, 160), interpolation=cv2.INTER_AREA))
    completed = subprocess.run([*run[:4], str(small), *run[5:]], cwd=REPO_ROOT, capture_output=True, text=True,
                               timeout=120)
    assert completed.returncode == 0 and f"{small}: warning: the face is" in completed.stderr, completed.stderr
    assert "px wide: the avatar will be blurry" in completed.stderr


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


def test_stage_timings_cover_every_stage(pipeline: ReenactmentPipeline, talking_face_frames) -> None:
    target = pipeline.prepare_target([read_rgb(gallery()[0].path)])
    result = pipeline.process([FrameJob(pipeline.new_driver(), target, talking_face_frames[0])])[0]
    assert set(result.stage_seconds) == {"detect", "landmarks", "transform", "generate"}
    assert all(seconds >= 0 for seconds in result.stage_seconds.values())
    assert result.stage_seconds["detect"] > 0 and result.stage_seconds["generate"] > 0


def test_bad_frames_never_raise(pipeline: ReenactmentPipeline, talking_face_frames) -> None:
    target = pipeline.prepare_target([read_rgb(gallery()[0].path)])
    driver = pipeline.new_driver()
    gray = cv2.cvtColor(talking_face_frames[0], cv2.COLOR_RGB2GRAY)
    rgba = np.dstack([talking_face_frames[1], np.full(gray.shape, 255, np.uint8)])
    odd = [np.zeros((0, 0, 3), np.uint8), np.zeros((4, 4, 3), np.uint8), np.zeros((50, 50, 2), np.uint8), None]
    results = pipeline.process([FrameJob(driver, target, frame) for frame in [gray, rgba, *odd]])
    assert [r.face_found for r in results] == [True, True, False, False, False, False]
    assert all(r.image.shape == (192, 192, 3) and r.image.dtype == np.uint8 for r in results)


def test_target_uses_the_chosen_face(pipeline: ReenactmentPipeline) -> None:
    group = read_rgb(sample_media("multi_face.jpg"))
    target = pipeline.prepare_target([group])
    # The crop's face is at the standard scale whichever face it came from; check it is the chosen one (the
    # best scored, models.face_choice) by cropping each face of the group photo and comparing the crops.
    from models.align import align_face
    from models.face_choice import find_faces

    faces = find_faces(group)
    assert len(faces) >= 2
    crops = [align_face(group, face.landmarks, 192)[0].astype(np.float32) for face in faces]
    errors = [np.abs(crop - target.images[0]).mean() for crop in crops]
    assert int(np.argmin(errors)) == target.photos[0].choice.chosen and min(errors) < 1.0


def test_faceless_video_holds_the_target(pipeline: ReenactmentPipeline) -> None:
    target = pipeline.prepare_target([read_rgb(gallery()[0].path)])
    driver = pipeline.new_driver()
    with av.open(str(sample_media("no_face.mp4"))) as container:
        frames = [f.to_ndarray(format="rgb24") for _, f in zip(range(6), container.decode(video=0), strict=False)]
    results = pipeline.process([FrameJob(driver, target, frame) for frame in frames])
    assert not any(r.face_found for r in results)
    assert all(np.array_equal(r.image, target.images[0]) for r in results)


def test_passthrough_skips_landmark_work(talking_face_frames) -> None:
    pipeline = ReenactmentPipeline(PipelineConfig(generator="passthrough", output_size=128))
    target = pipeline.prepare_target([read_rgb(gallery()[0].path)])
    driver = pipeline.new_driver()
    results = pipeline.process([FrameJob(driver, target, frame) for frame in talking_face_frames[:3]])
    assert set(results[0].stage_seconds) == {"generate"}
    assert driver.neutral is None and driver.landmarks is None  # nothing was tracked
    assert all(r.face_found and r.image.shape == (128, 128, 3) for r in results)


def test_small_target_photos_are_enlarged_for_detection(pipeline: ReenactmentPipeline) -> None:
    photo = read_rgb(gallery()[0].path)
    small = cv2.resize(photo, (110, 110), interpolation=cv2.INTER_AREA)  # the face is ~45 px wide
    target = pipeline.prepare_target([small])
    full = pipeline.prepare_target([photo])
    # The same face at the same place in the crop, only blurrier.
    assert np.abs(target.landmarks[0] - full.landmarks[0]).mean() < 4.0
