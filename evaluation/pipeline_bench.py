"""Benchmark: CPU (or GPU) milliseconds per frame of each pipeline stage, per generator, at a given batch size.

    python -m evaluation.pipeline_bench [--generators warp,mesh] [--batch 1] [--frames 200]
        [--landmark-runtime auto|litert|torch|onnx] [--json out.json]

Drives the gallery's first portrait with the talking-face clip (batch B = B sessions, each its own driver),
and prints JSON with machine info: median wall ms per frame of detect, landmarks, transform and generate, their
sum, and the process CPU ms per frame (all threads; steadier than wall time on a shared machine). A timed
number is a benchmark result, never a test assertion.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from evaluation.machine_info import emit_report, machine_info
from evaluation.motion import read_clip
from models.assets import gallery, sample_media
from models.pipeline import GENERATORS, LANDMARK_RUNTIMES, FrameJob, PipelineConfig, ReenactmentPipeline

STAGES = ("detect", "landmarks", "transform", "generate")


def bench(generator: str, batch: int, frames: list[np.ndarray], device: str, landmark_runtime: str) -> dict:
    pipeline = ReenactmentPipeline(PipelineConfig(generator=generator, device=device,
                                                  landmark_runtime=landmark_runtime))
    photo = cv2.cvtColor(cv2.imread(str(gallery()[0].path)), cv2.COLOR_BGR2RGB)
    target = pipeline.prepare_target([photo])
    drivers = [pipeline.new_driver() for _ in range(batch)]
    per_stage: dict[str, list[float]] = {stage: [] for stage in STAGES}
    cpu_ms: list[float] = []  # process CPU (all threads) per frame: on a shared machine steadier than wall time
    for index in tqdm(range(len(frames)), desc=f"{generator} x{batch}", unit="step"):
        jobs = [FrameJob(driver, target, frames[(index + k * 7) % len(frames)]) for k, driver in enumerate(drivers)]
        cpu = time.process_time()
        timings = pipeline.process(jobs)[0].stage_seconds
        cpu_ms.append(1000 * (time.process_time() - cpu) / batch)
        for stage in STAGES:
            per_stage[stage].append(1000 * timings.get(stage, 0.0) / batch)
    warm = {stage: values[10:] for stage, values in per_stage.items()}  # first frames: detection, caches
    medians = {stage: round(float(np.median(values)), 2) for stage, values in warm.items()}
    totals = np.sum([warm[stage] for stage in STAGES], axis=0)
    return {"generator": generator, "batch": batch, "landmark_runtime": landmark_runtime, "ms_per_frame": medians,
            "total_ms_per_frame": {"median": round(float(np.median(totals)), 2),
                                   "p90": round(float(np.percentile(totals, 90)), 2)},
            "cpu_ms_per_frame": {"mean": round(float(np.mean(cpu_ms[10:])), 2),
                                 "median": round(float(np.median(cpu_ms[10:])), 2)}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generators", default="warp,mesh", help="comma-separated (default: warp,mesh)")
    parser.add_argument("--batch", type=int, default=1, help="sessions per pipeline call (default: 1)")
    parser.add_argument("--frames", type=int, default=200, help="pipeline calls per generator (default: 200)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="where the models run")
    parser.add_argument("--landmark-runtime", default="auto", choices=LANDMARK_RUNTIMES,
                        help="the mesh landmark stage's runtime (default: auto, litert on the CPU)")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.generators.split(",") if name.strip()]
    unknown = [name for name in names if name not in GENERATORS]
    if unknown or args.batch < 1 or args.frames < 20:
        parser.error(f"unknown generators {unknown}" if unknown else "--batch >= 1 and --frames >= 20")
    frames = read_clip(sample_media("WolfgangLanger_Pexels.mp4"), None)
    result = {"machine": machine_info(), "results": [bench(name, args.batch, frames[:args.frames], args.device,
                                                           args.landmark_runtime) for name in names]}
    emit_report(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
