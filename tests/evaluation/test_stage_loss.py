"""evaluation.stage_loss: each stage of the frame path measured against dlib on the caller, on a real clip."""

from __future__ import annotations

from evaluation.motion import read_clip, read_photo
from evaluation.signals import track_signals
from evaluation.stage_loss import STAGES, markdown, measure_pair, medians
from models.assets import gallery, sample_media
from models.pipeline import PipelineConfig, ReenactmentPipeline

FRAMES = 48  # single_face.mp4: a talking face, its mouth opening and closing


def test_every_stage_is_measured_and_the_mouth_survives_to_the_avatar() -> None:
    frames = read_clip(sample_media("single_face.mp4"), FRAMES)
    photo = read_photo(next(entry.path for entry in gallery() if entry.id == "astronaut")).rgb
    stages = measure_pair(ReenactmentPipeline(PipelineConfig(generator="mesh")), frames, photo,
                          track_signals(frames))
    assert list(stages) == list(STAGES)
    for stage in STAGES:
        assert stages[stage]["mouth"]["frames"] == FRAMES, stage  # a face at every stage of every frame
    # The caller's own landmarks follow dlib's mouth closely, and so does the avatar (measured: r 0.996, 0.987).
    assert stages["landmarks"]["mouth"]["corr"] > 0.9 and stages["rendered"]["mouth"]["corr"] > 0.85
    row = {"clip": "single_face.mp4", "target": "astronaut", "held_out": False, "stages": stages}
    table = medians([row])
    assert table["landmarks"]["mouth"]["corr"] == round(stages["landmarks"]["mouth"]["corr"], 2)
    text = markdown({"medians": {"tuning": table}, "pairs": {"tuning": 1}})
    assert "| rendered |" in text and "| landmarks |" in text
