"""Benchmark (not a test): params, FLOPs, and ms/frame + frames/s of the per-frame generator work
(driver encoder + blender + decoder, target side cached) per config, batch size and runtime.

    python -m evaluation.bench_marionette --json out/marionette_bench.json
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from evaluation.machine_info import emit_report, machine_info
from models.marionette.config import CONFIGS
from models.marionette.network import MarioNETteGenerator
from models.marionette.runtime import OnnxRuntime, Runtime, TorchRuntime, export_onnx


def count(model: MarioNETteGenerator) -> dict:
    size = model.config.image_size
    images = torch.zeros(1, 1, 3, size, size)
    with torch.no_grad(), FlopCounterMode(display=False) as target_flops:
        features = model.encode_targets(images, images)
    with torch.no_grad(), FlopCounterMode(display=False) as frame_flops:
        model.decode(torch.zeros(1, 3, size, size), features)
    return {"params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
            "gflops_per_frame": round(frame_flops.get_total_flops() / 1e9, 2),
            "gflops_per_target_photo": round(target_flops.get_total_flops() / 1e9, 2)}


def time_decode(runtime: Runtime, batch: int, repeats: int) -> float:
    size = runtime.config.image_size
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (1, 1, 3, size, size)).astype(np.float32)
    features = [np.repeat(f, batch, axis=0) for f in runtime.encode_targets(images, images)]
    drivers = rng.uniform(-1, 1, (batch, 3, size, size)).astype(np.float32)
    runtime.decode(drivers, features)  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        runtime.decode(drivers, features)
    return (time.perf_counter() - start) / repeats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.bench_marionette", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 4, 16, 64])
    parser.add_argument("--runtimes", nargs="+", default=["torch", "onnx"],
                        choices=["torch", "torch-fp16", "onnx"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--budget-s", type=float, default=20.0,
                        help="skip a measurement expected to take longer than this (big models on CPU)")
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = parser.parse_args(argv)
    report = {"machine": machine_info(), "device": args.device, "torch_threads": torch.get_num_threads(),
              "results": []}
    for name in args.configs:
        torch.manual_seed(0)
        model = MarioNETteGenerator(CONFIGS[name]).eval()
        entry = {"config": name, **count(model), "timings": []}
        for runtime_name in args.runtimes:
            if runtime_name == "onnx":
                directory = Path(tempfile.mkdtemp(prefix="bench-onnx-"))
                runtime: Runtime = OnnxRuntime(model.config, *export_onnx(model, directory))
            else:
                runtime = TorchRuntime(model, args.device, half=runtime_name == "torch-fp16")
            per_frame_estimate = None
            for batch in args.batches:
                if per_frame_estimate is not None and per_frame_estimate * batch * 3 > args.budget_s:
                    entry["timings"].append({"runtime": runtime_name, "batch": batch, "skipped": "over budget"})
                    continue
                seconds = time_decode(runtime, batch, repeats=2 if batch >= 16 else 3)
                per_frame_estimate = seconds / batch
                entry["timings"].append({"runtime": runtime_name, "batch": batch,
                                         "ms_per_frame": round(1000 * seconds / batch, 2),
                                         "frames_per_s": round(batch / seconds, 1)})
                print(f"{name:6s} {runtime_name:10s} batch {batch:3d}: {1000 * seconds / batch:8.2f} ms/frame "
                      f"{batch / seconds:8.1f} frames/s", file=sys.stderr)
        report["results"].append(entry)
    emit_report(report, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
