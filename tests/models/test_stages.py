"""Unit tests of each model stage on real photos and video frames."""

from __future__ import annotations

import dataclasses
import itertools

import av
import cv2
import numpy as np
import pytest

from models import geometry
from models.align import align_face
from models.assets import gallery, sample_media
from models.face_measures import eye_aspect_ratio, mouth_opening
from models.generators.base import GenerateRequest, GeneratorSettings
from models.generators.paint import paint_mouth
from models.generators.passthrough import PassthroughGenerator
from models.generators.warp import WarpGenerator, signed_areas, unfolded_controls
from models.geometry import STABLE_POINTS
from models.landmarks import FaceTracker, detect_face_boxes, detect_landmarks, face_size, to_gray
from models.smoothing import OneEuroFilter
from models.transformer import LandmarkTransformer, TransformerConfig

SIZE = 256


def read_rgb(path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def astronaut() -> tuple[np.ndarray, np.ndarray]:
    photo = read_rgb(gallery()[0].path)
    crop, points = align_face(photo, detect_landmarks(photo), SIZE)
    return crop, points


def test_detection_finds_the_largest_of_several_faces() -> None:
    group = read_rgb(sample_media("multi_face.jpg"))
    boxes = detect_face_boxes(to_gray(group))
    assert len(boxes) >= 2
    areas = [(b[2] - b[0]) * (b[3] - b[1]) for b in boxes]
    assert areas == sorted(areas, reverse=True)
    assert detect_landmarks(group) is not None


def test_no_face_in_a_landscape() -> None:
    assert detect_landmarks(read_rgb(sample_media("free-mountain-vector-01.jpg"))) is None


def test_landmarks_sit_on_the_face(astronaut) -> None:
    _crop, points = astronaut
    assert points.shape == (68, 2)
    # Aligned: eyes level, face centred, eye distance ~22% of the crop.
    left_eye, right_eye = points[36:42].mean(0), points[42:48].mean(0)
    assert abs(left_eye[1] - right_eye[1]) < 0.02 * SIZE
    assert 0.18 * SIZE < face_size(points) < 0.26 * SIZE
    assert abs(points[30, 0] - SIZE / 2) < 0.08 * SIZE


def test_tracker_follows_real_video_and_loses_faceless_frames(talking_face_frames) -> None:
    tracker = FaceTracker(detect_every=5)
    found = [tracker.update(frame) for frame in talking_face_frames[:40]]
    assert all(f is not None for f in found)
    steps = [np.linalg.norm(a.mean(0) - b.mean(0)) for a, b in itertools.pairwise(found)]
    assert max(steps) < 0.3 * face_size(found[0])  # smooth motion, no jumps
    with av.open(str(sample_media("no_face.mp4"))) as container:
        empty = [f.to_ndarray(format="rgb24") for _, f in zip(range(12), container.decode(video=0), strict=False)]
    results = [tracker.update(frame) for frame in empty]
    assert results[-1] is None  # lost within one detection interval


def test_transformer_neutral_keeps_target(astronaut) -> None:
    _, target = astronaut
    driver = detect_landmarks(read_rgb(gallery()[1].path))
    transformer = LandmarkTransformer(TransformerConfig(output_size=SIZE))
    np.testing.assert_allclose(transformer.transform(driver, driver, target), target, atol=1e-3)


def _open_mouth(points: np.ndarray, amount: float) -> np.ndarray:
    moved = points.copy()
    moved[[56, 57, 58, 65, 66, 67, 5, 6, 7, 8, 9, 10, 11]] += np.array([0, amount])
    return moved


def test_transformer_transfers_mouth_opening_proportionally(astronaut) -> None:
    _, target = astronaut
    neutral = detect_landmarks(read_rgb(gallery()[1].path))
    transformer = LandmarkTransformer(TransformerConfig(output_size=SIZE))
    small = transformer.transform(_open_mouth(neutral, 0.1 * face_size(neutral)), neutral, target)
    large = transformer.transform(_open_mouth(neutral, 0.3 * face_size(neutral)), neutral, target)
    base = mouth_opening(target)
    assert base < mouth_opening(small) < mouth_opening(large)
    # Opening is measured relative to face size, so it transfers in proportion.
    gain = (mouth_opening(large) - base) / (mouth_opening(small) - base)
    assert 2.5 < gain < 3.5


def test_wide_driver_face_does_not_widen_target(astronaut) -> None:
    _, target = astronaut
    neutral = detect_landmarks(read_rgb(gallery()[1].path))
    wide_neutral = neutral * np.array([1.4, 1.0])  # a much wider driver face, at rest
    transformer = LandmarkTransformer(TransformerConfig(output_size=SIZE))
    out = transformer.transform(wide_neutral, wide_neutral, target)
    np.testing.assert_allclose(out, target, atol=1e-2)
    # And the same expression from a wide face gives the same target result as from a normal one.
    normal = transformer.transform(_open_mouth(neutral, 8), neutral, target)
    wide = transformer.transform(_open_mouth(neutral, 8) * np.array([1.4, 1.0]), wide_neutral, target)
    np.testing.assert_allclose(wide, normal, atol=0.5)


def test_transformer_applies_head_rotation(astronaut) -> None:
    _, target = astronaut
    neutral = detect_landmarks(read_rgb(gallery()[1].path))
    angle = np.deg2rad(12)
    centre = neutral.mean(0)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    rotated = (neutral - centre) @ rotation.T + centre
    out = LandmarkTransformer(TransformerConfig(output_size=SIZE)).transform(rotated, neutral, target)
    _, measured = geometry.scale_and_angle(geometry.similarity_transform(target, out))
    assert abs(np.rad2deg(measured) - 12) < 0.5


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255**2 / max(mse, 1e-10)))


def test_warp_identity_returns_the_target(astronaut) -> None:
    crop, points = astronaut
    generator = WarpGenerator(GeneratorSettings(output_size=SIZE))
    cache = generator.prepare([crop], [points])
    out = generator.generate([GenerateRequest([crop], [points], cache, points, crop)])[0]
    assert out.shape == (SIZE, SIZE, 3) and out.dtype == np.uint8
    assert _psnr(out, crop) > 30


def test_warp_open_mouth_darkens_the_mouth_and_closed_eyes_cover_the_eye(astronaut) -> None:
    crop, points = astronaut
    generator = WarpGenerator(GeneratorSettings(output_size=SIZE))
    cache = generator.prepare([crop], [points])
    opened = _open_mouth(points, 0.35 * face_size(points))
    out = generator.generate([GenerateRequest([crop], [points], cache, opened, crop)])[0]
    mouth = cv2.fillPoly(np.zeros((SIZE, SIZE), np.uint8), [np.round(opened[60:68]).astype(np.int32)], 1) > 0
    # The astronaut's photo shows teeth: the opened mouth shows upper and lower teeth rows in their colour
    # with a dark gap between (measured: 24 % of the mouth dark, 3 % before), where the photo had lips/teeth.
    dark_before, dark_after = ((image[mouth].mean(axis=1) < 90).mean() for image in (crop, out))
    assert dark_after > 0.15 and dark_after > dark_before + 0.15, (dark_before, dark_after)
    colours = cache["per_image"][0]["colours"]
    assert colours.shows_teeth
    # A photo with a closed mouth has no teeth to show: painted upper teeth under the upper lip, a dark cavity below.
    no_teeth = crop.copy()
    paint_mouth(no_teeth, opened, dataclasses.replace(colours, shows_teeth=False))
    brightness = no_teeth[mouth].mean(axis=1)
    assert (brightness < 90).mean() > 0.3 and (brightness > 150).mean() > 0.1
    rows = np.flatnonzero(mouth.any(axis=1))
    upper_third = mouth & (np.arange(SIZE) < rows[0] + len(rows) / 3)[:, None]
    assert no_teeth[upper_third].mean() > no_teeth[mouth & ~upper_third].mean() + 40  # teeth hang from the top

    closed = points.copy()
    for top, bottom in ((37, 41), (38, 40), (43, 47), (44, 46)):
        middle = (closed[top] + closed[bottom]) / 2
        closed[top] = closed[bottom] = middle
    assert eye_aspect_ratio(closed) < 0.05
    out = generator.generate([GenerateRequest([crop], [points], cache, closed, crop)])[0]
    eye = cv2.fillPoly(np.zeros((SIZE, SIZE), np.uint8), [np.round(points[36:42]).astype(np.int32)], 1) > 0
    # The dark iris and pupil are covered by lighter lid skin.
    assert out[eye].mean() > crop[eye].mean() + 10


def test_passthrough_is_the_centre_square(talking_face_frames) -> None:
    frame = talking_face_frames[0]
    generator = PassthroughGenerator(GeneratorSettings(output_size=SIZE))
    out = generator.generate([GenerateRequest([], [], {}, None, frame)])[0]
    expected = cv2.resize(frame[:, 140:500], (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    assert _psnr(out, expected) > 40


def test_one_euro_filter_smooths_jitter_but_follows_motion() -> None:
    rng = np.random.default_rng(0)
    smoother = OneEuroFilter()
    still = [smoother(np.array([100.0, 100.0]) + rng.normal(0, 1.0, 2), t / 30, scale=60) for t in range(60)]
    assert np.std(np.array(still[10:]), axis=0).max() < 0.5  # raw jitter std is 1.0
    smoother.reset()
    moving = [smoother(np.array([100.0 + 10 * t, 100.0]), t / 30, scale=60) for t in range(30)]
    assert abs(moving[-1][0] - (100 + 10 * 29)) < 15  # lags less than 1.5 frames of motion


def test_transformer_limits_eye_opening_but_not_closing(astronaut) -> None:
    _, target = astronaut
    neutral = detect_landmarks(read_rgb(gallery()[1].path))
    transformer = LandmarkTransformer(TransformerConfig(output_size=SIZE, max_eye_opening=1.25))
    wide = neutral.copy()
    wide[[37, 38, 43, 44]] -= np.array([0, 0.25 * face_size(neutral)])  # eyes torn wide open
    shut = neutral.copy()
    for top, bottom in ((37, 41), (38, 40), (43, 47), (44, 46)):
        shut[top] = shut[bottom] = (neutral[top] + neutral[bottom]) / 2
    rest = eye_aspect_ratio(target)
    assert eye_aspect_ratio(transformer.transform(wide, neutral, target)) < 1.3 * rest
    assert eye_aspect_ratio(transformer.transform(shut, neutral, target)) < 0.3 * rest


def test_warp_tiles_the_frame_under_large_head_motion(astronaut) -> None:
    crop, points = astronaut
    generator = WarpGenerator(GeneratorSettings(output_size=SIZE))
    cache = generator.prepare([crop], [points])["per_image"][0]
    centre = points.mean(0)
    for degrees, shift in ((25, (30, 0)), (-25, (0, 35)), (15, (-35, -35))):
        angle = np.deg2rad(degrees)
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) * 1.2
        driven = (points - centre) @ rotation.T + centre + np.array(shift)
        pose = geometry.similarity_transform(points[STABLE_POINTS], driven[STABLE_POINTS])
        motion = (geometry.apply(pose, cache["ring"]) - cache["ring"]) * cache["ring_weights"][:, None]
        dst, triangles = unfolded_controls(cache["controls"], driven, cache["ring"], motion, cache["triangles"], SIZE)
        # The destination triangles tile the frame exactly once: no overlap (fold) and no hole (tear).
        assert abs(np.abs(signed_areas(dst, triangles)).sum() / 2 - (SIZE - 1) ** 2) < 1.0, (degrees, shift)
        out = generator.generate([GenerateRequest([crop], [points], {"per_image": [cache]}, driven, crop)])[0]
        assert out.shape == (SIZE, SIZE, 3)
