"""Fit the landmark-disentanglement model (expression basis, optional regressor) on face videos.

    python -m training.fit_landmarks --video a.mp4 --video b.mp4 --out expression.npz --regressor

Each video is taken as one identity. The training pipeline (issue 5) calls the same functions on its
training landmarks and saves the result with the checkpoint.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import av
import numpy as np
from tqdm import tqdm

from models.landmarks import FaceTracker
from models.marionette.landmark_disentangle import fit_expression_model


def video_landmarks(path: Path, max_frames: int | None = None) -> np.ndarray:
    """(T, 68, 2) landmarks of the tracked face in every frame that has one."""
    tracker, found = FaceTracker(), []
    with av.open(str(path)) as container:
        for index, frame in enumerate(tqdm(container.decode(video=0), desc=path.name, unit="frame")):
            if max_frames is not None and index >= max_frames:
                break
            points = tracker.update(frame.to_ndarray(format="rgb24"))
            if points is not None:
                found.append(points)
    return np.asarray(found, np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.fit_landmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, action="append", required=True, help="one identity per video")
    parser.add_argument("--out", type=Path, required=True, help="output .npz")
    parser.add_argument("--components", type=int, default=12)
    parser.add_argument("--regressor", action="store_true", help="also train the expression regressor")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for video in args.video:
        if not video.is_file():
            parser.error(f"no such file: {video}")
    sequences = [video_landmarks(video) for video in args.video]
    sequences = [s for s in sequences if len(s) >= 2]
    if not sequences:
        print("error: no faces found in the videos", file=sys.stderr)
        return 2
    model = fit_expression_model(sequences, args.components, args.regressor, seed=args.seed)
    model.save(args.out)
    print(f"wrote {args.out}: {len(model.components)} components explaining "
          f"{100 * model.explained.sum():.1f}% of expression variance, from {sum(map(len, sequences))} frames")
    return 0


if __name__ == "__main__":
    sys.exit(main())
