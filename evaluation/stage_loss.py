"""Where does the caller's motion get lost? Each signal measured after each stage of the frame path, on the set.

    python -m evaluation.stage_loss [--max-frames 200] [--out out/stage_loss]

For every pair of the evaluation set (evalset.PAIRS), dlib's 68 points on the caller's frames are the reference;
the same signals (head yaw, pitch, roll, mouth opening, eye opening; evaluation.signals) are then read from:
1. landmarks: the pipeline's own 68 points of the caller, as tracked (FaceMesh + the eye network), per frame;
2. smoothed: the caller's mesh after the One Euro smoothing, the one the transfer reads;
3. transferred: the target's driven mesh (the caller's pose and expression moved onto the target);
4. rendered: dlib on the avatar frames, what a viewer sees (evaluation.motion's numbers).
Per stage: correlation and amplitude ratio (stage 5-95 % range / reference's) with the reference, medians over the
pairs, tuning and held-out parts apart. A stage where r or amp drops is where to work. Writes report.json and
report.md in --out.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from evaluation import evalset
from evaluation.fidelity import compare_signals
from evaluation.machine_info import machine_info
from evaluation.motion import RequestRecorder, read_clip, read_photo
from evaluation.signals import SIGNALS, SignalTrack, signal_track, track_signals
from models.facemesh.mapping import to_ibug68
from models.pipeline import FrameJob, PipelineConfig, ReenactmentPipeline

STAGES = ("landmarks", "smoothed", "transferred", "rendered")
DRIVER_FPS = 30.0  # video time for the smoothing, as evaluation.motion


@dataclass
class StagePoints:
    """Per stage, each frame's 68 points (None where that stage had no face) and the image size they lie in."""

    points: dict[str, list[np.ndarray | None]]
    sizes: dict[str, tuple[int, int]]
    avatars: list[np.ndarray]


def stage_points(pipeline: ReenactmentPipeline, frames: list[np.ndarray], photo: np.ndarray) -> StagePoints:
    """Render the clip with the photo and keep what each stage made of every frame."""
    target = pipeline.prepare_target([photo])
    driver = pipeline.new_driver()
    points: dict[str, list[np.ndarray | None]] = {stage: [] for stage in STAGES[:3]}
    avatars = []
    with RequestRecorder(pipeline.generator) as recorder:
        for index, frame in enumerate(frames):
            recorder.requests = []
            avatars.append(pipeline.process([FrameJob(driver, target, frame, index / DRIVER_FPS)])[0].image)
            rendered = bool(recorder.requests)
            points["landmarks"].append(driver.landmarks.copy() if rendered and driver.landmarks is not None else None)
            smoothed = driver.current_mesh if rendered else None
            points["smoothed"].append(None if smoothed is None else to_ibug68(smoothed, refined_eyes=True))
            # The transfer's output: the generator drives the target's mesh again from the same request.
            driven = pipeline.generator._layout(recorder.requests[0])[0].points if rendered else None
            points["transferred"].append(None if driven is None else to_ibug68(driven, refined_eyes=True))
    height, width = frames[0].shape[:2]
    size = pipeline.config.output_size
    return StagePoints(points, {"landmarks": (height, width), "smoothed": (height, width),
                                "transferred": (size, size)}, avatars)


def measure_pair(pipeline: ReenactmentPipeline, frames: list[np.ndarray], photo: np.ndarray,
                 reference: SignalTrack) -> dict[str, dict]:
    """Stage -> compare_signals(reference, that stage)."""
    made = stage_points(pipeline, frames, photo)
    tracks = {stage: signal_track(made.points[stage], [made.sizes[stage]] * len(made.avatars))
              for stage in STAGES[:3]}
    tracks["rendered"] = track_signals(made.avatars)
    return {stage: compare_signals(reference, tracks[stage]) for stage in STAGES}


def medians(rows: list[dict]) -> dict[str, dict[str, dict[str, float | None]]]:
    """Stage -> signal -> median corr and amp over the rows."""
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for stage in STAGES:
        out[stage] = {}
        for name in SIGNALS:
            for measure in ("corr", "amp"):
                values = [row["stages"][stage][name][measure] for row in rows
                          if row["stages"][stage][name][measure] is not None]
                out[stage].setdefault(name, {})[measure] = round(float(np.median(values)), 2) if values else None
    return out


def markdown(report: dict) -> str:
    lines = ["# Where the caller's motion is lost, stage by stage (medians over the set's pairs, r / amp)", ""]
    for part, table in report["medians"].items():
        lines += [f"## {part} ({report['pairs'][part]} pairs)", "", "| stage | " + " | ".join(SIGNALS) + " |",
                  "|---" * (len(SIGNALS) + 1) + "|"]
        for stage in STAGES:
            cells = [f"{_cell(table[stage][name]['corr'])} / {_cell(table[stage][name]['amp'])}" for name in SIGNALS]
            lines.append(f"| {stage} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.stage_loss", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-frames", type=int, default=200, help="frames per clip (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("out/stage_loss"), help="folder (default: %(default)s)")
    args = parser.parse_args(argv)
    evalset.ensure(log=lambda line: print(line, file=sys.stderr))
    pipeline = ReenactmentPipeline(PipelineConfig(generator="mesh"))
    held_out = {entry.name for entry in evalset.ITEMS if entry.held_out}
    clips: dict[str, tuple[list[np.ndarray], SignalTrack]] = {}
    rows = []
    for clip, photo in tqdm(evalset.PAIRS, desc="pairs", unit="pair"):
        if clip not in clips:
            frames = read_clip(evalset.fetched_path(clip), args.max_frames, evalset.item(clip).start)
            clips[clip] = (frames, track_signals(frames))
        frames, reference = clips[clip]
        stages = measure_pair(pipeline, frames, read_photo(evalset.fetched_path(photo), photo).rgb, reference)
        rows.append({"clip": clip, "target": photo, "held_out": clip in held_out or photo in held_out,
                     "stages": stages})
    parts = {"tuning": [row for row in rows if not row["held_out"]],
             "held out": [row for row in rows if row["held_out"]]}
    report = {"machine": machine_info(), "max_frames": args.max_frames,
              "pairs": {part: len(members) for part, members in parts.items()},
              "medians": {part: medians(members) for part, members in parts.items()}, "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=1))
    text = markdown(report)
    (args.out / "report.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
