"""Evaluate generators on held-out face videos: identity, motion transfer, fidelity, jitter, speed.

    python -m evaluation.evaluate --data HELDOUT/ --out report/ [--generators marionette,warp,still]
        [--weights W.pt] [--max-frames 120]

--data takes a folder of held-out videos (mp4/avi/mov/mkv; the videos training.prepare put in the
held-out split) or single video files, and may be repeated.

Self-reenactment: the target is the clip's first frame, the driver the rest of the same clip, so the
driver frame (cropped like the target) is the ground truth (SSIM, PSNR). Cross-identity: the target
is the next clip's first frame (or a gallery photo when there is one clip), driven by this clip.
For every generator (e.g. marionette, the warp baseline, and "still" = the target photo unchanged):
- identity: cosine of dlib face embeddings, output vs target (higher is better) and output vs driver
  in cross-identity (identity leakage, lower is better);
- motion: NME between the output's detected landmarks and the transformed driver landmarks (by
  inter-ocular distance), and the head-roll error in degrees;
- SSIM and PSNR in self-reenactment; temporal jitter of output landmarks; frames per second.
Writes report.json, report.md and samples.png.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import av
import cv2
import numpy as np
from skimage.metrics import structural_similarity
from tqdm import tqdm

from evaluation.fidelity import DRIVER_FPS
from evaluation.identity import cosine_similarity, face_embedding
from evaluation.machine_info import machine_info
from models.align import crop_matrix
from models.assets import gallery
from models.landmarks import detect_landmarks, face_size
from models.pipeline import GENERATORS, FrameJob, NoFaceError, PipelineConfig, ReenactmentPipeline
from options import MISSING, OptionParser, new_parser, option, section
from training.prepare import find_videos

EMBED_EVERY = 4  # embeddings cost ~120 ms: every 4th frame is plenty for a mean


# Passthrough shows the driver itself: nothing to evaluate.
EVALUATED = tuple(name for name in GENERATORS if name != "passthrough")


@dataclass(frozen=True, kw_only=True)
class EvalConfig(PipelineConfig):
    """The pipeline options (driver landmarks, transformer, ...) apply to every generator under test; the
    metrics' own reference landmarks are always dlib's. --weights goes to marionette only."""

    videos: tuple[Path, ...] = option(MISSING, "held-out video file or folder of videos (repeat)", flag="--data",
                                      repeat=True)
    out: Path = option(MISSING, "report directory")
    generators: tuple[str, ...] = option(("warp", "still"), "comma-separated generators to evaluate",
                                         choices=EVALUATED)
    max_frames: int = option(120, "frames per clip", low=1)


@dataclass
class _Scores:
    identity: list[float] = field(default_factory=list)
    leakage: list[float] = field(default_factory=list)
    nme: list[float] = field(default_factory=list)
    roll_error: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)
    psnr: list[float] = field(default_factory=list)
    jitter: list[float] = field(default_factory=list)
    seconds: float = 0.0
    frames: int = 0
    missing_faces: int = 0

    def summary(self) -> dict:
        def mean(values: list[float]) -> float | None:
            return round(float(np.mean(values)), 4) if values else None

        return {"identity_similarity": mean(self.identity), "identity_leakage": mean(self.leakage),
                "landmark_nme": mean(self.nme), "head_roll_error_deg": mean(self.roll_error),
                "ssim": mean(self.ssim), "psnr": mean(self.psnr), "jitter": mean(self.jitter),
                "fps": round(self.frames / self.seconds, 1) if self.seconds else None,
                "frames": self.frames, "frames_without_face": self.missing_faces}


def read_frames(path: Path, limit: int) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for _, f in zip(range(limit), container.decode(video=0), strict=False)]


def _roll(points: np.ndarray) -> float:
    eyes = points[42:48].mean(0) - points[36:42].mean(0)
    return float(np.degrees(np.arctan2(eyes[1], eyes[0])))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255**2 / max(mse, 1e-10))


def run_clip(pipeline: ReenactmentPipeline, target_photo: np.ndarray, frames: list[np.ndarray], scores: _Scores,
             self_reenactment: bool, samples: list[np.ndarray]) -> None:
    target = pipeline.prepare_target([target_photo])
    target_embedding = face_embedding(target.images[0])
    driver = pipeline.new_driver()
    matrix = crop_matrix(detect_landmarks(target_photo), pipeline.config.output_size) if self_reenactment else None
    previous: list[np.ndarray] = []
    for index, frame in enumerate(frames):
        start = time.perf_counter()
        result = pipeline.process([FrameJob(driver, target, frame, index / DRIVER_FPS)])[0]  # video time
        scores.seconds += time.perf_counter() - start
        scores.frames += 1
        driven = result.driven
        found = detect_landmarks(result.image)
        if found is None or driven is None:
            scores.missing_faces += found is None
            continue
        scores.nme.append(float(np.linalg.norm(found - driven, axis=1).mean() / max(face_size(driven), 1e-6)))
        scores.roll_error.append(abs(_roll(found) - _roll(driven)))
        previous.append(found)
        if len(previous) >= 3:
            second_difference = previous[-1] - 2 * previous[-2] + previous[-3]
            scores.jitter.append(float(np.linalg.norm(second_difference, axis=1).mean() / face_size(found)))
        if matrix is not None:
            truth = cv2.warpAffine(frame, matrix, result.image.shape[1::-1], borderMode=cv2.BORDER_REPLICATE)
            scores.ssim.append(float(structural_similarity(truth, result.image, channel_axis=2, data_range=255)))
            scores.psnr.append(_psnr(truth, result.image))
        if index % EMBED_EVERY == 0 and target_embedding is not None:
            output_embedding = face_embedding(result.image)
            if output_embedding is not None:
                scores.identity.append(cosine_similarity(output_embedding, target_embedding))
                driver_embedding = face_embedding(frame) if not self_reenactment else None
                if driver_embedding is not None:
                    scores.leakage.append(cosine_similarity(output_embedding, driver_embedding))
        if len(samples) < 4 and index % max(1, len(frames) // 4) == 0:
            samples.append(result.image)


def evaluate(config: EvalConfig) -> dict:
    clips = [read_frames(path, config.max_frames + 1) for path in config.videos]
    cross_targets = [clips[(i + 1) % len(clips)][0] for i in range(len(clips))] if len(clips) > 1 else [
        cv2.cvtColor(cv2.imread(str(gallery()[0].path)), cv2.COLOR_BGR2RGB)]
    report: dict = {"machine": machine_info(), "videos": [str(v) for v in config.videos],
                    "driver_landmarks": config.landmarks,
                    "max_frames": config.max_frames, "generators": {}}
    strips: dict[str, list[np.ndarray]] = {}
    for name in config.generators:
        pipeline = ReenactmentPipeline(section(config, PipelineConfig, generator=name,
                                               weights=config.weights if name == "marionette" else None))
        per_mode = {"self": _Scores(), "cross": _Scores()}
        samples: list[np.ndarray] = []
        for index, clip in enumerate(tqdm(clips, desc=name, unit="clip")):
            try:
                run_clip(pipeline, clip[0], clip[1:], per_mode["self"], True, samples)
                run_clip(pipeline, cross_targets[index % len(cross_targets)], clip[1:], per_mode["cross"], False, [])
            except NoFaceError:
                print(f"warning: no face in the first frame of {config.videos[index]}: skipped", file=sys.stderr)
        report["generators"][name] = {mode: scores.summary() for mode, scores in per_mode.items()}
        strips[name] = samples
    write_report(report, strips, config.out)
    return report


def markdown(report: dict) -> str:
    lines = ["# Evaluation", "", f"Clips: {', '.join(report['videos'])} (up to {report['max_frames']} frames each)", "",
             "| generator | mode | identity ↑ | leakage ↓ | landmark NME ↓ | roll err ° ↓ | SSIM ↑ | PSNR ↑ | jitter ↓ "
             "| fps |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, modes in report["generators"].items():
        for mode, s in modes.items():
            lines.append(f"| {name} | {mode} | {s['identity_similarity']} | {s['identity_leakage']} | "
                         f"{s['landmark_nme']} | {s['head_roll_error_deg']} | {s['ssim']} | {s['psnr']} | "
                         f"{s['jitter']} | {s['fps']} |")
    return "\n".join(lines) + "\n"


def write_report(report: dict, strips: dict[str, list[np.ndarray]], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(markdown(report))
    rows = [np.concatenate(images, axis=1) for images in strips.values() if images]
    if rows:
        width = max(r.shape[1] for r in rows)
        rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
        cv2.imwrite(str(out / "samples.png"), cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR))


def held_out_videos(paths: list[Path]) -> tuple[Path, ...]:
    """Video files as given, folders expanded to the videos inside (sorted, as training.prepare walks them)."""
    videos: list[Path] = []
    for path in paths:
        videos += find_videos(path) if path.is_dir() else [path] if path.is_file() else []
    return tuple(videos)


def main(argv: list[str] | None = None) -> int:
    parser = OptionParser(new_parser("python -m evaluation.evaluate", __doc__), EvalConfig, exclude={"generator"})
    config = parser.parse(argv)
    missing = [str(path) for path in config.videos if not path.exists()]
    if missing:
        parser.parser.error(f"no such file or folder: {', '.join(missing)}")
    videos = held_out_videos(list(config.videos))
    if not videos:
        parser.parser.error(f"no videos found in {', '.join(map(str, config.videos))}")
    report = evaluate(replace(config, videos=videos))
    print(markdown(report))
    print(f"report: {config.out / 'report.json'}, {config.out / 'report.md'}, {config.out / 'samples.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
