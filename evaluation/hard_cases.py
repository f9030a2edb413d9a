"""A picture of the avatar's hardest cases on the evaluation set: one row per photo, the frames a person looks at.

    python -m evaluation.hard_cases [--out docs/media/hard_cases.jpg] [--generator mesh] [--title TEXT]

Rows: a turned and side-lit photo, a frontal one, downcast eyes, a small face, grayscale, an open-mouthed photo,
each driven by a clip of the evaluation set. Columns: the driver's calibration frame (at rest the avatar should
be the photo), its most closed eyes, its most open mouth and its largest head turn (dlib on the driver picks
them), each as a driver | avatar pair. Run it before and after a change and put the two pictures side by side.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from evaluation import evalset
from evaluation.motion import read_clip, read_photo
from evaluation.motion_report import strip_frames
from evaluation.signals import track_signals
from models.generators import GENERATOR_NAMES
from models.pipeline import FrameJob, PipelineConfig, ReenactmentPipeline

CASES = (  # (photo, driving clip, what the row shows)
    ("faceapi_sample1.jpg", "WolfgangLanger_Pexels.mp4", "turned, side-lit"),
    ("smiling_man.jpg", "webcam_400x300.mp4", "frontal"),
    ("faceapi_sample2.jpg", "single_face.mp4", "downcast eyes"),
    ("small_aligned_face.png", "webcam_176x144.mp4", "small face (112 px photo)"),
    ("podium_speaker.jpg", "WolfgangLanger_Pexels.mp4", "grayscale, small face in a large photo"),
    ("frown.jpg", "carphone_176x144.mp4", "held out: wide-open mouth driver"),
)
COLUMNS = ("at rest", "eyes most closed", "mouth most open", "max |yaw|")
TILE = 160  # px: the height of each driver and avatar image
MAX_FRAMES = 200


def _fit(image: np.ndarray, height: int) -> np.ndarray:
    return cv2.resize(image, (round(image.shape[1] * height / image.shape[0]), height), interpolation=cv2.INTER_AREA)


def _label(width: int, text: str, shade: int = 255) -> np.ndarray:
    band = np.full((20, width, 3), shade, np.uint8)
    cv2.putText(band, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    return band


def render_case(pipeline: ReenactmentPipeline, photo_name: str, clip_name: str
                ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Column label -> (driver frame, avatar frame) for one photo driven by one clip."""
    frames = read_clip(evalset.fetched_path(clip_name), MAX_FRAMES, evalset.item(clip_name).start)
    picks = strip_frames(track_signals(frames))
    target = pipeline.prepare_target([read_photo(evalset.fetched_path(photo_name)).rgb])
    driver = pipeline.new_driver()
    wanted = {"at rest": None, **{name: picks.get(name) for name in COLUMNS[1:]}}
    avatars: dict[int, np.ndarray] = {}  # only the frames the row shows
    for index, frame in enumerate(frames):
        uncalibrated = driver.neutral is None
        image = pipeline.process([FrameJob(driver, target, frame, index / 30)])[0].image
        if uncalibrated and driver.neutral is not None and wanted["at rest"] is None:
            wanted["at rest"] = index
        if index in wanted.values():
            avatars[index] = image
    return {name: (frames[index], avatars[index]) for name, index in wanted.items() if index is not None}


def picture(generator: str, title: str) -> np.ndarray:
    pipeline = ReenactmentPipeline(PipelineConfig(generator=generator, output_size=256))
    rows = []
    for photo_name, clip_name, what in tqdm(CASES, desc="hard cases"):
        pairs = render_case(pipeline, photo_name, clip_name)
        cells = []
        for column in COLUMNS:
            if column not in pairs:
                continue
            driver, avatar = pairs[column]
            pair = np.concatenate([_fit(driver, TILE), _fit(avatar, TILE)], axis=1)
            cells += [np.concatenate([_label(pair.shape[1], column), pair]), np.full((TILE + 20, 4, 3), 255, np.uint8)]
        row = np.concatenate(cells[:-1], axis=1)
        rows.append(np.concatenate([_label(row.shape[1], f"{photo_name} <- {clip_name}: {what}", 230), row]))
    width = max(row.shape[1] for row in rows)
    rows = [np.pad(row, ((0, 4), (0, width - row.shape[1]), (0, 0)), constant_values=255) for row in rows]
    return np.concatenate([_label(width, title, 200), *rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.hard_cases", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("out/hard_cases.jpg"),
                        help="image file (default: %(default)s)")
    parser.add_argument("--generator", choices=GENERATOR_NAMES, default="mesh", help="default: %(default)s")
    parser.add_argument("--title", default=None, help="the picture's heading (default: the generator's name)")
    args = parser.parse_args(argv)
    image = picture(args.generator, args.title or f"generator {args.generator} (each pair: driver | avatar)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(args.out), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88]):
        print(f"could not write {args.out}", file=sys.stderr)
        return 1
    print(f"wrote {args.out} ({image.shape[1]}x{image.shape[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
