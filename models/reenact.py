"""Offline reenactment: drive target photo(s) with a video file, no network.

    python -m models.reenact --target photo.jpg --driver video.mp4 --out out.mp4
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
from tqdm import tqdm

from models.generators.passthrough import centre_square
from models.pipeline import FaceIndexError, FrameJob, NoFaceError, PipelineConfig, ReenactmentPipeline, TargetFace
from options import MISSING, OptionParser, new_parser, option

BATCH = 8


@dataclass(frozen=True, kw_only=True)
class ReenactConfig(PipelineConfig):
    targets: tuple[Path, ...] = option(MISSING, "target photo; repeat for few-shot (several photos of one person)",
                                       flag="--target", repeat=True, existing=True)
    driver: Path = option(MISSING, "driving video (any format PyAV reads)", existing=True)
    out: Path = option(MISSING, "output video (.mp4)")
    faces: tuple[int, ...] = option((), "which face of each target photo to use, by the number the photo check "
                                    "prints (left to right from 0); repeat once per photo; default: the subject's",
                                    flag="--face", repeat=True, low=0)
    max_frames: int | None = option(None, "stop after this many frames", low=1)
    side_by_side: bool = option(False, "write driver | avatar side by side")


def parse_args(argv: list[str] | None = None) -> ReenactConfig:
    return OptionParser(new_parser("python -m models.reenact", __doc__), ReenactConfig).parse(argv)


def read_photo(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def print_photo_check(target: TargetFace, paths: tuple[Path, ...]) -> None:
    """On stderr: which face of each photo is used, and what the avatar will lack (models.photo_check)."""
    for path, photo in zip(paths, target.photos, strict=True):
        faces = photo.choice.faces
        if len(faces) > 1:
            boxes = ", ".join(f"{i}: {[round(v) for v in f.face.box]}" for i, f in enumerate(faces))
            close = " (a close call: check it is the right one)" if photo.choice.close_call else ""
            print(f"{path}: {len(faces)} faces ({boxes}); using face {photo.choice.chosen}{close}; --face N picks "
                  "another", file=sys.stderr)
        for warning in photo.check.warnings:
            print(f"{path}: warning: {warning}", file=sys.stderr)


def _open_writer(
    path: Path, width: int, height: int, fps: float
) -> tuple[av.container.OutputContainer, av.VideoStream]:
    path.parent.mkdir(parents=True, exist_ok=True)
    container = av.open(str(path), mode="w")
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    stream = container.add_stream(codec, rate=round(fps) or 30)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    return container, stream


def reenact(config: ReenactConfig) -> int:
    """Writes the output video; returns the number of frames written."""
    pipeline = ReenactmentPipeline(config)
    target = pipeline.prepare_target([read_photo(p) for p in config.targets], config.faces)
    print_photo_check(target, config.targets)
    driver = pipeline.new_driver()
    written = 0
    with av.open(str(config.driver)) as source:
        video = source.streams.video[0]
        total = video.frames or None
        if config.max_frames:
            total = min(total or config.max_frames, config.max_frames)
        fps = float(video.average_rate or 30)
        width = config.output_size * (2 if config.side_by_side else 1)
        container, stream = _open_writer(config.out, width, config.output_size, fps)
        with container, tqdm(total=total, unit="frame", desc="reenacting") as progress:
            pending: list[np.ndarray] = []

            def flush() -> None:
                nonlocal written
                start = written / fps  # video time: smoothing does not depend on how fast this machine is
                results = pipeline.process([FrameJob(driver, target, frame, start + i / fps)
                                            for i, frame in enumerate(pending)])
                for frame, result in zip(pending, results, strict=True):
                    image = result.image
                    if config.side_by_side:
                        image = np.concatenate([centre_square(frame, config.output_size), image], axis=1)
                    for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                        container.mux(packet)
                    written += 1
                progress.update(len(pending))
                pending.clear()

            for frame in source.decode(video):
                if config.max_frames and written + len(pending) >= config.max_frames:
                    break
                pending.append(frame.to_ndarray(format="rgb24"))
                if len(pending) == BATCH:
                    flush()
            if pending:
                flush()
            for packet in stream.encode():
                container.mux(packet)
    return written


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    try:
        written = reenact(config)
    except (NoFaceError, FaceIndexError) as error:
        print(f"error: {error} ({config.targets[error.index]})", file=sys.stderr)
        return 2
    except (ValueError, av.FFmpegError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {written} frames to {config.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
