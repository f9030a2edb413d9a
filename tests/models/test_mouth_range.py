"""The mouth opens as far as the caller's: its opening ratio, read against the caller's own range."""

from __future__ import annotations

import numpy as np

from evaluation.motion import motion_fidelity, read_photo
from evaluation.webcam_like import ping_pong, single_person
from models.assets import gallery
from models.facemesh.canonical import canonical_face
from models.mesh3d.caller_range import MouthRange, MouthRangeConfig
from models.mesh3d.transfer import (
    IMAGE_AXES,
    LOWER_LIP,
    MOUTH_GAP,
    MeshTransfer,
    mouth_openness,
    with_mouth_of,
)
from models.pipeline import FrameJob, PipelineConfig, ReenactmentPipeline

WEBCAM_FRAMES = 200  # as evaluation.webcam_like makes it: the caller's range needs a few seconds


def face_mesh(scale: float, shift: tuple[float, float]) -> np.ndarray:
    """MediaPipe's canonical face as a (468, 3) mesh in image axes, `scale` px per cm."""
    return canonical_face().vertices * IMAGE_AXES * scale + np.array([*shift, 0.0])


def test_the_opening_ratio_transfers_across_face_sizes() -> None:
    target = face_mesh(12.0, (128, 128))
    neutral = face_mesh(4.0, (200, 150))  # a small webcam face
    opened = neutral.copy()
    opened[list(LOWER_LIP), 1] += 0.25 * np.linalg.norm(neutral[61] - neutral[291])  # lower lip drops
    change = mouth_openness(opened) - mouth_openness(neutral)
    transfer = MeshTransfer(target)
    for gain in (1.0, 2.0):
        driven = transfer.drive(opened, neutral, mouth_gain=gain).points
        assert abs(mouth_openness(driven) - mouth_openness(target) - gain * change) < 0.02, gain
    rest = transfer.drive(neutral, neutral).points
    assert abs(mouth_openness(rest) - mouth_openness(target)) < 1e-3  # at rest the target's own mouth


def test_the_gain_follows_the_callers_range_and_is_bounded() -> None:
    config = MouthRangeConfig()
    quiet, wide = MouthRange(config), MouthRange(config)
    rng = np.random.default_rng(0)
    for step in range(200):
        quiet.update(0.02 + 0.005 * rng.standard_normal())  # lips barely part: the gain tops out
        wide.update(0.3 * (step % 20 < 10))  # opens wide, often: shown as measured
    assert quiet.gain == config.max_gain and wide.gain == config.min_gain
    for _ in range(300):
        wide.update(0.0)  # a quiet spell afterwards does not raise the gain again
    assert wide.gain == config.min_gain


def test_a_webcam_callers_mouth_opens_the_avatar_as_wide(talking_face_frames) -> None:
    # single_face.mp4 as a 400x300 webcam shows it (face ~70 px, room light, H.264). Before: mouth amp 0.50
    # (r 0.88), the raw mesh offsets of a small face; after: amp 1.12, r 0.87 (evaluation.motion, same frames).
    from tests.models.test_facemesh_tracker import decode

    frames = single_person(ping_pong(decode("single_face.mp4", 72), WEBCAM_FRAMES), (400, 300))
    pipeline = ReenactmentPipeline(PipelineConfig(generator="mesh"))
    photo = read_photo(next(entry.path for entry in gallery() if entry.id == "astronaut"))
    target, driver = pipeline.prepare_target([photo.rgb]), pipeline.new_driver()
    avatars = [pipeline.process([FrameJob(driver, target, frame, index / 30)])[0].image
               for index, frame in enumerate(frames)]
    mouth = motion_fidelity(frames, avatars)["mouth"]
    assert mouth["corr"] > 0.8 and 0.75 <= mouth["amp"] <= 1.25, mouth


def _lips_apart(mesh: np.ndarray, share: float) -> np.ndarray:
    opened = mesh.copy()
    opened[list(LOWER_LIP), 1] += share * np.linalg.norm(mesh[61] - mesh[291])
    return opened


def test_a_caller_calibrated_mid_word_closes_the_avatars_mouth_without_crossing_its_lips() -> None:
    target = face_mesh(12.0, (128, 128))
    closed = face_mesh(4.0, (200, 150))
    neutral = _lips_apart(closed, 0.3)  # the first frame caught them mid-word
    transfer = MeshTransfer(target)
    down = transfer.target_frame.rotation[:, 1]

    def signed_gap(mesh: np.ndarray) -> float:
        return float(np.mean([(mesh[lower] - mesh[upper]) @ down for upper, lower in MOUTH_GAP]))

    # Read against the open neutral, their closed mouth pushes the lower lip up by the whole opening: the jaw
    # moves it back, so the lips meet instead of passing each other.
    driven = transfer.drive(closed, neutral).points
    assert signed_gap(driven) > -0.02 * np.linalg.norm(target[61] - target[291])
    # Once their closed mouth is known, opening is read from it: a half-open mouth opens the avatar's.
    half = _lips_apart(closed, 0.15)
    assert mouth_openness(transfer.drive(half, neutral).points) < mouth_openness(target) + 0.01
    wanted = mouth_openness(half) - mouth_openness(closed)
    opened = transfer.drive(half, neutral, mouth_closed=mouth_openness(closed)).points
    assert abs(mouth_openness(opened) - mouth_openness(target) - wanted) < 0.02


def test_the_neutral_takes_the_callers_closed_mouth_and_keeps_its_pose_and_eyes() -> None:
    neutral = _lips_apart(face_mesh(4.0, (200, 150)), 0.3)
    later = face_mesh(4.4, (210, 140))  # closed mouth, the head moved a little
    mixed = with_mouth_of(neutral, later)
    assert abs(mouth_openness(mixed) - mouth_openness(later)) < 1e-3
    upper_face = [10, 151, 6, 168, 33, 133, 159, 145, 263, 362, 386, 374]  # forehead, nose bridge, eye corners, lids
    assert np.allclose(mixed[upper_face], neutral[upper_face])


def test_the_callers_closed_mouth_is_their_low_percentile() -> None:
    mouth = MouthRange(MouthRangeConfig())
    assert mouth.closed is None
    rng = np.random.default_rng(1)
    for value in np.clip(0.03 + np.abs(rng.normal(0, 0.15, 120)), 0, None):
        mouth.update(float(value))
    assert mouth.closed is not None and 0.03 <= mouth.closed < 0.05
    mouth.reset()
    assert mouth.closed is None
