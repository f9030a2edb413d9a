"""Turn a folder of face videos into training shards: aligned face crops + landmarks, one shard per video.

    python -m training.prepare --videos DIR --out DATA [--size 256] [--workers 2] [--heldout-fraction 0.1]

Each video's face is tracked; every frame is cropped with one fixed, upright crop per video (from the
median landmarks), so head motion stays in the frames as the driver's pose. Shards go to DATA/train or
DATA/heldout, split by video (never by frame), deterministically from the video's name. Resumable:
videos that already have a shard are skipped. Videos that cannot be read or show no face are listed in
DATA/skipped.json, never fatal.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
from tqdm import tqdm

from models import geometry
from models.align import crop_matrix
from models.landmarks import FaceTracker

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm"}
MIN_FRAMES = 8


@dataclass(frozen=True)
class PrepareConfig:
    videos: Path
    out: Path
    size: int = 256
    workers: int = 2
    heldout_fraction: float = 0.1
    max_frames: int = 2000  # per video


def split_of(video: Path, heldout_fraction: float) -> str:
    bucket = int(hashlib.sha256(video.stem.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "heldout" if bucket < heldout_fraction else "train"


def shard_path(config: PrepareConfig, video: Path) -> Path:
    return config.out / split_of(video, config.heldout_fraction) / f"{video.stem}.npz"


def prepare_video(config: PrepareConfig, video: Path) -> tuple[str, str | None]:
    """Write one shard; returns (video, reason it was skipped or None)."""
    tracker, frames, landmarks = FaceTracker(), [], []
    try:
        with av.open(str(video)) as container:
            for index, frame in enumerate(container.decode(video=0)):
                if index >= config.max_frames:
                    break
                rgb = frame.to_ndarray(format="rgb24")
                points = tracker.update(rgb)
                if points is not None:
                    frames.append(rgb)
                    landmarks.append(points)
    except (av.FFmpegError, OSError, StopIteration) as error:
        return str(video), f"unreadable: {error}"
    if len(frames) < MIN_FRAMES:
        return str(video), f"a face in only {len(frames)} frames"
    matrix = crop_matrix(np.median(np.stack(landmarks), axis=0), config.size)
    crops = np.stack([cv2.warpAffine(f, matrix, (config.size, config.size), flags=cv2.INTER_AREA,
                                     borderMode=cv2.BORDER_REPLICATE) for f in frames])
    points = np.stack([geometry.apply(matrix, p) for p in landmarks]).astype(np.float32)
    target = shard_path(config, video)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial.npz")
    np.savez(partial, frames=crops, landmarks=points, video_id=video.stem)
    partial.rename(target)  # a shard exists only once complete: an interrupted run redoes it
    return str(video), None


def find_videos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())


def prepare(config: PrepareConfig) -> dict:
    videos = find_videos(config.videos)
    todo = [v for v in videos if not shard_path(config, v).exists()]
    skipped: dict[str, str] = {}
    with ProcessPoolExecutor(max_workers=max(1, config.workers)) as pool:
        jobs = [pool.submit(prepare_video, config, video) for video in todo]
        for job in tqdm(jobs, desc="videos", unit="video"):
            name, reason = job.result()
            if reason:
                skipped[name] = reason
    config.out.mkdir(parents=True, exist_ok=True)
    (config.out / "skipped.json").write_text(json.dumps(skipped, indent=2))
    summary = {split: len(list((config.out / split).glob("*.npz"))) for split in ("train", "heldout")}
    return {"videos": len(videos), "prepared_now": len(todo) - len(skipped), "skipped": skipped, "shards": summary}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.prepare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=Path, required=True, help="folder of videos (searched recursively)")
    parser.add_argument("--out", type=Path, required=True, help="dataset folder")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2, help="parallel processes")
    parser.add_argument("--heldout-fraction", type=float, default=0.1)
    parser.add_argument("--max-frames", type=int, default=2000, help="per video")
    args = parser.parse_args(argv)
    if not args.videos.is_dir():
        parser.error(f"--videos {args.videos}: not a folder")
    result = prepare(PrepareConfig(args.videos, args.out, args.size, args.workers, args.heldout_fraction,
                                   args.max_frames))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
