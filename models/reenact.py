"""Offline reenactment: drive target photo(s) with a video file, no network.

    python -m models.reenact --target photo.jpg --driver video.mp4 --out out.mp4
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
from tqdm import tqdm

from models.generators.passthrough import centre_square
from models.pipeline import GENERATORS, LANDMARK_SOURCES, FrameJob, NoFaceError, PipelineConfig, ReenactmentPipeline

BATCH = 8


@dataclass(frozen=True)
class ReenactConfig:
    targets: tuple[Path, ...]
    driver: Path
    out: Path
    generator: str = "warp"
    size: int = 256
    max_frames: int | None = None
    side_by_side: bool = False
    weights: Path | None = None
    network: str = "lite"
    runtime: str = "torch"
    landmarks: str = "mesh"


def parse_args(argv: list[str] | None = None) -> ReenactConfig:
    parser = argparse.ArgumentParser(prog="python -m models.reenact", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", type=Path, action="append", required=True,
                        help="target photo; repeat for few-shot (several photos of one person)")
    parser.add_argument("--driver", type=Path, required=True, help="driving video (any format PyAV reads)")
    parser.add_argument("--out", type=Path, required=True, help="output video (.mp4)")
    parser.add_argument("--generator", choices=GENERATORS, default="warp", help="default: %(default)s")
    parser.add_argument("--size", type=int, default=256, help="output size in pixels (default: %(default)s)")
    parser.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    parser.add_argument("--side-by-side", action="store_true", help="write driver | avatar side by side")
    parser.add_argument("--weights", type=Path, default=None, help="marionette: trained weights (default: untrained)")
    parser.add_argument("--network", choices=("lite", "base", "paper"), default="lite", help="marionette network")
    parser.add_argument("--runtime", choices=("torch", "onnx"), default="torch", help="marionette runtime")
    parser.add_argument("--landmarks", choices=LANDMARK_SOURCES, default="mesh",
                        help="driver landmarks: mesh (BlazeFace + FaceMesh) or dlib (default: %(default)s)")
    args = parser.parse_args(argv)
    if not 64 <= args.size <= 1024 or args.size % 2:
        parser.error("--size must be even and between 64 and 1024")
    for path in [*args.target, args.driver, *([args.weights] if args.weights else [])]:
        if not path.is_file():
            parser.error(f"no such file: {path}")
    return ReenactConfig(tuple(args.target), args.driver, args.out, args.generator, args.size, args.max_frames,
                         args.side_by_side, args.weights, args.network, args.runtime, args.landmarks)


def read_photo(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


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
    pipeline = ReenactmentPipeline(PipelineConfig(
        generator=config.generator, output_size=config.size, weights=str(config.weights) if config.weights else None,
        network=config.network, runtime=config.runtime, landmarks=config.landmarks))
    target = pipeline.prepare_target([read_photo(p) for p in config.targets])
    driver = pipeline.new_driver()
    written = 0
    with av.open(str(config.driver)) as source:
        video = source.streams.video[0]
        total = video.frames or None
        if config.max_frames:
            total = min(total or config.max_frames, config.max_frames)
        fps = float(video.average_rate or 30)
        width = config.size * (2 if config.side_by_side else 1)
        container, stream = _open_writer(config.out, width, config.size, fps)
        with container, tqdm(total=total, unit="frame", desc="reenacting") as progress:
            pending: list[np.ndarray] = []

            def flush() -> None:
                nonlocal written
                results = pipeline.process([FrameJob(driver, target, frame) for frame in pending])
                for frame, result in zip(pending, results, strict=True):
                    image = result.image
                    if config.side_by_side:
                        image = np.concatenate([centre_square(frame, config.size), image], axis=1)
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
    except NoFaceError as error:
        print(f"error: {error} ({', '.join(map(str, config.targets))})", file=sys.stderr)
        return 2
    except (ValueError, av.FFmpegError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {written} frames to {config.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
