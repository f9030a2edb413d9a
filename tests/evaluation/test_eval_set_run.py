"""The evaluation set's run (evaluation.motion --set): the at-rest measure, the worst frame, and the page."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from evaluation import evalset
from evaluation.motion import main
from evaluation.rest_check import FAR_OFF, face_region, rest_difference, tear_share, worst_match
from evaluation.signals import SIGNALS, SignalTrack
from models.pipeline import PipelineConfig, ReenactmentPipeline

SET_FRAMES = 6  # enough for a calibration frame and a worst match in every pair; the page's rows are what counts


@pytest.fixture(scope="module")
def target() -> tuple[np.ndarray, np.ndarray]:
    pipeline = ReenactmentPipeline(PipelineConfig(generator="still", output_size=256))
    rgb = cv2.cvtColor(cv2.imread(str(evalset.fetched_path("smiling_man.jpg"))), cv2.COLOR_BGR2RGB)
    prepared = pipeline.prepare_target([rgb])
    return prepared.images[0], prepared.landmarks[0]


def test_the_photo_itself_is_zero_and_a_seam_on_the_cheek_counts(target: tuple[np.ndarray, np.ndarray]) -> None:
    photo, points = target
    assert rest_difference(photo, photo, points) == 0.0
    seam = photo.copy()
    x = int(points[3, 0]) + 6  # just inside the jaw line on one side, as the seam down a shadowed cheek
    seam[int(points[1, 1]):int(points[5, 1]), x:x + 3] = 0
    share = rest_difference(seam, photo, points)
    assert 0.002 < share < 0.05, share
    background = photo.copy()
    background[:12, :12] = 255 - background[:12, :12]  # a corner far from the face: not the face region
    assert not face_region(points, photo.shape[:2])[:12, :12].any()
    assert rest_difference(background, photo, points) == 0.0
    slight = np.clip(photo.astype(np.int16) + FAR_OFF - 5, 0, 255).astype(np.uint8)  # codec-sized change
    assert rest_difference(slight, photo, points) == 0.0


def test_the_worst_match_is_the_frame_where_the_avatar_does_something_else() -> None:
    frames = 40
    time = np.linspace(0, 4 * np.pi, frames)
    driver_values = {name: np.sin(time + i) for i, name in enumerate(SIGNALS)}
    avatar_values = {name: values.copy() for name, values in driver_values.items()}
    avatar_values["mouth"][27] += 3.0  # the avatar's mouth jumps while the caller's does not
    points = [np.zeros((68, 2))] * frames
    worst = worst_match(SignalTrack(points, driver_values), SignalTrack(points, avatar_values))
    assert worst == 27
    assert worst_match(SignalTrack([None] * frames, driver_values), SignalTrack(points, avatar_values)) is None


@pytest.fixture(scope="module")
def set_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict]:
    out = tmp_path_factory.mktemp("eval")
    assert main(["--set", "--max-frames", str(SET_FRAMES), "--out", str(out)]) == 0
    return out, (out / "index.html").read_text(), json.loads((out / "report.json").read_text())


def test_the_page_has_every_pair_with_held_out_rows_apart(set_run: tuple[Path, str, dict]) -> None:
    out, page, report = set_run
    pairs = evalset.covering_pairs()
    assert len(report["rows"]) == len(pairs)
    tuning, held = page.split("Held out (never tuned on)")
    held_rows, strips = held.split("Strips: driver | avatar")
    held_out = {item.name for item in evalset.ITEMS if item.held_out}
    for clip, photo in pairs:
        in_held = clip in held_out or photo in held_out
        row = re.compile(rf">{re.escape(clip)}</a></td><td class=\"name\">{re.escape(photo)}</td>")
        assert bool(row.search(held_rows)) == in_held and bool(row.search(tuning)) != in_held, (clip, photo)
    for row in report["rows"]:
        assert (out / row["strip"]).is_file() and row["strip"] in strips
        if row["driver_faces"]:  # face_enters.mov's first frames have none: no calibration frame yet
            assert row["rest_far_share"] is not None and 0.0 <= row["rest_far_share"] <= 1.0
        else:
            assert row["rest_far_share"] is None and row["calibration_frame"] is None
    assert "bw_soldier.jpg" in page  # the photo with no face found is named, not silently dropped


def test_set_refuses_its_own_inputs_being_replaced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--set", "--driver", str(evalset.fetched_path("single_face.mp4")), "--out", str(tmp_path)])
    assert "leave out --driver and --target" in capsys.readouterr().err


def test_a_seam_inside_the_face_is_a_tear_and_the_outline_is_not() -> None:
    size = 64
    face = np.zeros((size, size), bool)
    face[16:48, 16:48] = True
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    identity = np.stack([xs, ys], axis=-1)
    assert tear_share(identity, face) == 0.0
    seam = identity.copy()
    seam[:, 32:, 0] += 6.0  # the right half of the face samples 6 px further right: a seam down the middle
    share = tear_share(seam, face)
    assert share is not None and 0.03 < share < 0.1, share
    outline = identity.copy()
    outline[:, 48:, 0] += 20.0  # the jump lies where the face ends: the background beside it moved, no tear
    assert tear_share(outline, face) == 0.0
    assert tear_share(identity + 1000.0, face) is None  # nothing samples the face
